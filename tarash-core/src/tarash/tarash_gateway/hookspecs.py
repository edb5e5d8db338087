"""The provider contract: the hooks a Tarash plugin may implement.

A plugin is a module (named by an entry point in the ``tarash`` group) whose functions are marked
with :data:`tarash.tarash_gateway.plugin.hookimpl` and named after the hooks below. Implement:

* :func:`register_providers` (always): which providers the plugin adds.
* Either the **queue lifecycle** (:func:`submit`, :func:`status`, :func:`result`, optionally
  :func:`cancel`; each with an ``_async`` twin you may implement instead of or besides the sync
  one) — recommended: core then owns polling, deadlines, retries, cancel-on-timeout,
  fallbacks and resume for you;
* or the **blocking hooks** :func:`generate_video` / :func:`generate_image` (and ``_async``
  twins) for a provider that only offers a blocking call. Core can neither cancel nor resume those.

Lifecycle and blocking hooks are called only for the providers the plugin registered: core finds
the plugin that owns ``config.provider`` and calls that plugin's implementation alone, so one
plugin's bug never reaches another provider. Observer hooks (:func:`attempt_started`,
:func:`attempt_finished`, :func:`progress_reported`) are called on every plugin; what they raise is
logged and ignored.

Errors: raise the exceptions in :mod:`tarash.tarash_gateway.exceptions`. Core decides what to
retry from the exception type and the phase: ``HTTPConnectionError(request_sent=False)`` on
submit is retried; after a submit may have been sent core never resubmits (unless the provider
declares ``Capabilities.idempotency_key``); ``HTTPError`` 429/5xx and ``HTTPConnectionError`` on
status and result are retried with backoff (honouring ``HTTPError.retry_after``); any other
exception ends the attempt, and a retryable one moves on to the next fallback.

Examples below come from ``tarash-example-provider`` (``tarash_example_provider/_plugin.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .models import (
        AnyConfig,
        AnyRequest,
        AnyResponse,
        AnyUpdate,
        ImageGenerationConfig,
        ImageGenerationRequest,
        ImageGenerationResponse,
        ImageProgressCallback,
        ProgressCallback,
        VideoGenerationConfig,
        VideoGenerationRequest,
        VideoGenerationResponse,
    )
    from .plugin import CallContext, JobRef, JobStatus, ProviderSpec, SubmittedJob

hookspec = pluggy.HookspecMarker("tarash")

# ----------------------------------------------------------------------------------------------
# Registration
# ----------------------------------------------------------------------------------------------


@hookspec
def register_providers() -> Sequence[ProviderSpec]:
    """Declare the providers this plugin adds.

    Called once per plugin, lazily, the first time Tarash needs to resolve or list providers.

    :returns: a sequence of :class:`~tarash.tarash_gateway.plugin.ProviderSpec` records.
    :raises: nothing on purpose; an exception (or a wrong return type) marks the plugin broken:
        it is listed by ``list_plugins()`` / ``tarash plugins`` with the error, and every other
        provider keeps working (``TARASH_STRICT_PLUGINS=1`` raises instead).

    Example::

        @hookimpl
        def register_providers():
            return [ProviderSpec(name="example", modalities={"video", "image"},
                                 capabilities=Capabilities(cancel=True, progress_percent=True),
                                 api_key_env="EXAMPLE_API_KEY")]
    """
    raise NotImplementedError


@hookspec
def register_commands(subparsers: Any) -> None:
    """Add sub-commands to the ``tarash`` CLI.

    Called when the CLI builds its parser, with the ``argparse`` sub-parsers object of the
    top-level command. Set ``func`` on your parser (``parser.set_defaults(func=...)``); it receives
    the parsed namespace and returns an exit code.

    Example::

        @hookimpl
        def register_commands(subparsers):
            p = subparsers.add_parser("example-ping", help="check the example server")
            p.set_defaults(func=lambda args: 0)
    """


# ----------------------------------------------------------------------------------------------
# Queue lifecycle (recommended)
# ----------------------------------------------------------------------------------------------


@hookspec
def submit(
    config: AnyConfig,
    request: AnyRequest,
    context: CallContext,
) -> SubmittedJob:
    """Send the generation request; return as soon as the provider has accepted the job.

    Called once per attempt, after core validated the config and request. Validate every value
    against the model's allowed values *before* sending, so an impossible request is never billed.

    :param config: the attempt's config (``api_key`` may be ``None``: read your env var then).
    :param request: a ``VideoGenerationRequest`` or ``ImageGenerationRequest``
        (``context.modality`` says which).
    :param context: provider name, deadline (``timeout``), attempt number, idempotency key.
    :returns: :class:`~tarash.tarash_gateway.plugin.SubmittedJob` with the provider's job id and
        the JSON-safe state needed to poll it (never secrets).
    :raises ValidationError: invalid values (nothing sent).
    :raises HTTPConnectionError: with ``request_sent=False`` only when the request provably never
        left (connection refused, DNS, connect timeout): core may retry it then.
    :raises UnknownSubmissionError: the request may have arrived but the answer was lost.

    Example::

        @hookimpl
        def submit(config, request, context):
            answer = _client(config).post("/jobs", json=_payload(config, request), timeout=context.timeout)
            return SubmittedJob(job_id=answer["id"])
    """
    raise NotImplementedError


@hookspec
async def submit_async(
    config: AnyConfig,
    request: AnyRequest,
    context: CallContext,
) -> SubmittedJob:
    """Async twin of :func:`submit` (used by the async API; the sync one is used otherwise)."""
    raise NotImplementedError


@hookspec
def status(config: AnyConfig, job: JobRef, context: CallContext) -> JobStatus:
    """Observe a submitted job once (one status request; core does the polling loop).

    Called repeatedly, ``config.poll_interval`` apart unless ``JobStatus.poll_after`` says
    otherwise, until the state is ``completed``, ``failed`` or ``cancelled`` or the deadline passes.
    Also called to resume a job from a :class:`~tarash.tarash_gateway.plugin.JobRef` in another
    process, so rely only on ``job.job_id`` and ``job.data``.

    :returns: :class:`~tarash.tarash_gateway.plugin.JobStatus`.
    :raises HTTPError: with ``status_code`` (and ``retry_after`` when the provider says); 429 and
        5xx are retried by core.
    :raises HTTPConnectionError: retried by core.

    Example::

        @hookimpl
        def status(config, job, context):
            data = _client(config).get(f"/jobs/{job.job_id}", timeout=context.timeout)
            return JobStatus(state=data["state"], progress_percent=data.get("progress"))
    """
    raise NotImplementedError


@hookspec
async def status_async(config: AnyConfig, job: JobRef, context: CallContext) -> JobStatus:
    """Async twin of :func:`status`."""
    raise NotImplementedError


@hookspec
def result(config: AnyConfig, job: JobRef, context: CallContext) -> AnyResponse:
    """Fetch the output of a completed job.

    Called once after :func:`status` reported ``completed`` (and retried by core on 429/5xx and
    connection errors).

    :returns: a ``VideoGenerationResponse`` (video jobs) or ``ImageGenerationResponse`` (image
        jobs) whose ``request_id`` is ``job.job_id``.
    :raises GenerationFailedError: the job finished without usable output.

    Example::

        @hookimpl
        def result(config, job, context):
            data = _client(config).get(f"/jobs/{job.job_id}/result", timeout=context.timeout)
            return VideoGenerationResponse(request_id=job.job_id, video=data["url"], raw_response=data)
    """
    raise NotImplementedError


@hookspec
async def result_async(config: AnyConfig, job: JobRef, context: CallContext) -> AnyResponse:
    """Async twin of :func:`result`."""
    raise NotImplementedError


@hookspec
def cancel(config: AnyConfig, job: JobRef, context: CallContext) -> bool:
    """Ask the provider to stop a job (implement only if ``Capabilities.cancel`` is True).

    Called by core when the deadline passes, when a fallback abandons the job, when the caller's
    progress callback raises, and by ``JobHandle.cancel()``.

    :returns: ``True`` if the provider accepted the cancel, ``False`` if the job had already
        finished.
    :raises TarashException: the cancel failed (core records it in the attempt metadata).

    Example::

        @hookimpl
        def cancel(config, job, context):
            reply = _client(config).post(f"/jobs/{job.job_id}/cancel", timeout=context.timeout)
            return reply["cancelled"]
    """
    raise NotImplementedError


@hookspec
async def cancel_async(config: AnyConfig, job: JobRef, context: CallContext) -> bool:
    """Async twin of :func:`cancel`."""
    raise NotImplementedError


# ----------------------------------------------------------------------------------------------
# Blocking hooks (for providers without a queue API, and for register_provider handlers)
# ----------------------------------------------------------------------------------------------


@hookspec
def generate_video(
    provider: str,
    config: VideoGenerationConfig,
    request: VideoGenerationRequest,
    on_progress: ProgressCallback | None,
) -> VideoGenerationResponse:
    """Generate a video in one blocking call (used only if the plugin has no lifecycle hooks).

    :param provider: the provider name (a plugin may register several).
    :param on_progress: call it with ``VideoGenerationUpdate`` objects as the job advances.
    :returns: the finished ``VideoGenerationResponse``.
    :raises UnsupportedModalityError: or ``NotImplementedError``, if the provider has no video.

    Example::

        @hookimpl
        def generate_video(provider, config, request, on_progress):
            data = httpx.post(URL, json={"prompt": request.prompt}, timeout=config.timeout).json()
            return VideoGenerationResponse(request_id=data["id"], video=data["video_url"])
    """
    raise NotImplementedError


@hookspec
async def generate_video_async(
    provider: str,
    config: VideoGenerationConfig,
    request: VideoGenerationRequest,
    on_progress: ProgressCallback | None,
) -> VideoGenerationResponse:
    """Async twin of :func:`generate_video`; core cancels the task when the deadline passes."""
    raise NotImplementedError


@hookspec
def generate_image(
    provider: str,
    config: ImageGenerationConfig,
    request: ImageGenerationRequest,
    on_progress: ImageProgressCallback | None,
) -> ImageGenerationResponse:
    """Generate images in one blocking call (see :func:`generate_video`)."""
    raise NotImplementedError


@hookspec
async def generate_image_async(
    provider: str,
    config: ImageGenerationConfig,
    request: ImageGenerationRequest,
    on_progress: ImageProgressCallback | None,
) -> ImageGenerationResponse:
    """Async twin of :func:`generate_image`."""
    raise NotImplementedError


# ----------------------------------------------------------------------------------------------
# Observers (any plugin; exceptions are logged and ignored)
# ----------------------------------------------------------------------------------------------


@hookspec
def attempt_started(provider: str, model: str, modality: str, attempt: int) -> None:
    """An attempt (one config of a fallback chain) is about to start.

    Example (a meter)::

        @hookimpl
        def attempt_started(provider, model, modality, attempt):
            METRICS.labels(provider, model).inc()
    """


@hookspec
def attempt_finished(metadata: Any, error: BaseException | None) -> None:
    """An attempt ended; ``metadata`` is its ``AttemptMetadata``, ``error`` its error if it failed.

    Example (pricing)::

        @hookimpl
        def attempt_finished(metadata, error):
            if metadata.status == "success":
                LEDGER.charge(metadata.provider, metadata.model)
    """


@hookspec
def progress_reported(update: AnyUpdate) -> None:
    """A progress update was produced (the same object the caller's ``on_progress`` receives).

    Example::

        @hookimpl
        def progress_reported(update):
            log.info("%s %s %s", update.provider, update.status, update.queue_position)
    """
