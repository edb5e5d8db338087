"""The ``fal`` entry point: registers the provider and forwards the lifecycle hooks.

Kept tiny on purpose: importing it imports neither fal-client nor httpx; the implementation in
``tarash_fal._provider`` is imported by the first hook call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tarash.tarash_gateway.plugin import Capabilities, Lazy, ProviderSpec, hookimpl

if TYPE_CHECKING:
    from tarash.tarash_gateway.plugin import CallContext, JobRef, JobStatus, SubmittedJob


def _families() -> Any:
    from ._registry import FAMILIES

    return FAMILIES


def _mappings() -> Any:
    from ._registry import IMAGE_MAPPINGS, VIDEO_MAPPINGS

    return {**VIDEO_MAPPINGS, **IMAGE_MAPPINGS}


@hookimpl
def register_providers() -> list[ProviderSpec]:
    """The ``fal`` provider: video and image models on fal's queue API.

    The model tables are :class:`Lazy`: discovery does not import the registry.
    """
    return [
        ProviderSpec(
            name="fal",
            modalities={"video", "image"},
            capabilities=Capabilities(
                cancel=True, queue_position=True, logs=True, webhooks=True, resume=True
            ),
            models=Lazy(_families),
            field_mappings=Lazy(_mappings),
            api_key_env="FAL_KEY",
            description="fal.ai queue API (Veo, Kling, Wan, Sora, Flux and more) via fal-client.",
        )
    ]


@hookimpl
def submit(config: Any, request: Any, context: CallContext) -> SubmittedJob:
    """Submit a generation to fal's queue."""
    from ._provider import submit as run

    return run(config, request, context)


@hookimpl
async def submit_async(config: Any, request: Any, context: CallContext) -> SubmittedJob:
    """Async :func:`submit`."""
    from ._provider import submit_async as run

    return await run(config, request, context)


@hookimpl
def status(config: Any, job: JobRef, context: CallContext) -> JobStatus:
    """One status check of a fal job (queue position, logs)."""
    from ._provider import status as run

    return run(config, job, context)


@hookimpl
async def status_async(config: Any, job: JobRef, context: CallContext) -> JobStatus:
    """Async :func:`status`."""
    from ._provider import status_async as run

    return await run(config, job, context)


@hookimpl
def result(config: Any, job: JobRef, context: CallContext) -> Any:
    """The output of a completed fal job."""
    from ._provider import result as run

    return run(config, job, context)


@hookimpl
async def result_async(config: Any, job: JobRef, context: CallContext) -> Any:
    """Async :func:`result`."""
    from ._provider import result_async as run

    return await run(config, job, context)


@hookimpl
def cancel(config: Any, job: JobRef, context: CallContext) -> bool:
    """Cancel a fal job; False when it had already finished."""
    from ._provider import cancel as run

    return run(config, job, context)


@hookimpl
async def cancel_async(config: Any, job: JobRef, context: CallContext) -> bool:
    """Async :func:`cancel`."""
    from ._provider import cancel_async as run

    return await run(config, job, context)
