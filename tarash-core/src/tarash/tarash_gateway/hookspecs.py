"""The provider contract: the hooks a Tarash plugin may implement.

A plugin is a module (named by an entry point in the ``tarash`` group) whose functions are marked
with :data:`tarash.tarash_gateway.plugin.hookimpl` and named after the hooks below. Implement:

* :func:`register_providers` (always): which providers the plugin adds.
* The **queue lifecycle**: :func:`submit`, :func:`status`, :func:`result`, optionally
  :func:`cancel` and :func:`reconcile` (find a job whose submit answer was lost). Core then owns
  polling, deadlines, retries, cancel-on-timeout, fallbacks and resume for you.
* Or a **blocking call**: :func:`generate_video` / :func:`generate_image`, for an API that answers
  a generation in one request (core can neither cancel nor resume those, and never resends one).

Each of these hooks is written **once**, with no I/O of its own: it returns a *flow*, a generator
that yields :class:`~tarash.tarash_gateway.plugin.Request` records and receives
:class:`~tarash.tarash_gateway.plugin.Response` records, and returns the hook's result. Core sends
every request through its own pooled sync or async httpx client, so the same flow serves
``generate_video`` and ``generate_video_async`` (the way ``httpx.Auth.auth_flow`` does)::

    @hookimpl
    def status(config, job, context):
        answer = yield Request(method="GET", url=f"/v1/jobs/{job.job_id}")
        return JobStatus(state=answer.json()["status"])

Core does the I/O of every request a flow yields: it joins the URL to the API root, adds the
auth header with the key it resolved (and refuses a request that carries the key anywhere else),
applies the time left before the deadline to every timeout, decides once whether a failed request
may have been sent (a submit that may have arrived is never resent), and throws an
:class:`~tarash.tarash_gateway.exceptions.HTTPError` into the flow at its ``yield`` for a 4xx/5xx
answer: catch it to translate a provider's error body (a 422 naming a field becomes
``ValidationError``, a content refusal ``ContentModerationError``) and let every other one
propagate, as core decides what to retry from the exception type and the phase. An exception that
is not a :class:`~tarash.tarash_gateway.exceptions.TarashException` is a bug: it ends the attempt
without a fallback. The whole list, with retries, is in the docs' "The provider contract" page.

Lifecycle and blocking hooks are called only on the plugin that registered ``context.provider``,
through one pluggy hook caller per plugin, so one plugin's bug never reaches another provider.
Observer hooks (:func:`attempt_started`, :func:`attempt_finished`, :func:`progress_reported`) are
called on every plugin; what they raise is logged and ignored.

A provider that cannot be described as HTTP requests (it needs a vendor SDK) implements
:func:`async_lifecycle` instead: the one escape hatch.

Examples below come from ``tarash-example-provider`` (``tarash_example_provider/_plugin.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from ._cost import PricingRule, ReportedUsage, UnitPrice
    from .models import (
        AnyConfig,
        AnyRequest,
        AnyResponse,
        AnyUpdate,
        ImageGenerationConfig,
        ImageGenerationRequest,
        ImageGenerationResponse,
        VideoGenerationConfig,
        VideoGenerationRequest,
        VideoGenerationResponse,
    )
    from .plugin import (
        CallContext,
        Flow,
        JobRef,
        JobStatus,
        ProviderSpec,
        Reconciliation,
        SubmissionIntent,
        SubmittedJob,
    )
    from .webhooks import WebhookContext, WebhookEvent

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
                                 api_key_env="EXAMPLE_API_KEY",
                                 base_url="https://api.example.com")]
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


@hookspec(firstresult=True)
def resolve_api_key(provider: str) -> str | None:
    """A key for ``provider`` from somewhere other than ``config.api_key`` and ``api_key_env``.

    Called only when neither gives one (for example a key split over two variables, or a
    credentials file). Core registers what it returns as a secret.

    :returns: the key, or ``None`` when there is none (core then raises
        ``MissingCredentialsError`` naming ``api_key_env``).

    Example (tarash-fal)::

        @hookimpl
        def resolve_api_key(provider):
            key_id, secret = os.environ.get("FAL_KEY_ID"), os.environ.get("FAL_KEY_SECRET")
            return f"{key_id}:{secret}" if key_id and secret else None
    """


# ----------------------------------------------------------------------------------------------
# Queue lifecycle
# ----------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def submit(config: AnyConfig, request: AnyRequest, context: CallContext) -> Flow[SubmittedJob]:
    """Describe the request(s) that start a job; return once the provider has accepted it.

    Called once per attempt, after core validated the config and request. Validate every value
    against the model's allowed values *before* the first ``yield``, so an impossible request is
    never sent. Several requests may be yielded (an upload, then the submit); core records which
    may have reached the provider, and once a billing request (not ``idempotent``) was accepted or
    its answer lost, a retryable error or a plain ``GenerationFailedError`` the flow raises is
    ``UnknownSubmissionError``: the job may exist, so it is neither sent again nor replaced by a
    fallback.

    :param config: the attempt's config.
    :param request: a ``VideoGenerationRequest`` or ``ImageGenerationRequest``
        (``context.modality`` says which).
    :param context: provider, deadline (``timeout``), attempt, idempotency key, API root, key.
    :returns: a flow returning :class:`~tarash.tarash_gateway.plugin.SubmittedJob` with the
        provider's job id and the JSON-safe state needed to poll it (never secrets).
    :raises ValidationError: invalid values (raise before yielding: nothing is sent).
    :raises ContentModerationError: the provider refused the content.

    Example::

        @hookimpl
        def submit(config, request, context):
            answer = yield Request(method="POST", url="/v1/jobs", json=_body(config, request, context))
            return SubmittedJob(job_id=answer.json()["id"])
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def status(config: AnyConfig, job: JobRef, context: CallContext) -> Flow[JobStatus]:
    """Observe a submitted job once (one status request; core does the polling loop).

    Called repeatedly, ``config.poll_interval`` apart unless ``JobStatus.poll_after`` says
    otherwise, until the state is ``completed``, ``failed`` or ``cancelled`` or the deadline passes.
    Also called to resume a job from a :class:`~tarash.tarash_gateway.plugin.JobRef` in another
    process, so rely only on ``job.job_id`` and ``job.data``.

    :returns: a flow returning :class:`~tarash.tarash_gateway.plugin.JobStatus`.

    Example::

        @hookimpl
        def status(config, job, context):
            answer = yield Request(method="GET", url=job.data["links"]["status"])
            return _status(answer.json(), job)
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def result(config: AnyConfig, job: JobRef, context: CallContext) -> Flow[AnyResponse]:
    """Read the output of a completed job.

    Called after :func:`status` reported ``completed`` (retried by core on 429/5xx and connection
    errors).

    :returns: a flow returning a ``VideoGenerationResponse`` (video jobs) or
        ``ImageGenerationResponse`` (image jobs) whose ``request_id`` is ``job.job_id``.
    :raises GenerationFailedError: the job finished without usable output.

    Example::

        @hookimpl
        def result(config, job, context):
            answer = yield Request(method="GET", url=job.data["links"]["result"])
            return _response(answer.json(), job)
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def cancel(config: AnyConfig, job: JobRef, context: CallContext) -> Flow[bool]:
    """Ask the provider to stop a job (implement only if ``Capabilities.cancel`` is True).

    Called by core when the deadline passes, when a fallback abandons the job, when the caller's
    progress callback raises, and by ``JobHandle.cancel()``.

    :returns: a flow returning ``True`` if the provider accepted the cancel, ``False`` if the job
        had already finished.

    Example::

        @hookimpl
        def cancel(config, job, context):
            try:
                yield Request(method="POST", url=job.data["links"]["cancel"])
            except HTTPError as exc:
                if exc.status_code == 409:  # already finished
                    return False
                raise
            return True
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def reconcile(config: AnyConfig, intent: SubmissionIntent, context: CallContext) -> Flow[Reconciliation]:
    """Find out whether a submit whose answer was lost created a job (implement only where the
    provider documents a way to look a request up after the fact).

    Called by ``jobs.resume()`` for a ledger record left ``unknown``: the submit may have reached
    the provider, but its answer (the job id) never came back. Yield read-only requests (a list of
    recent requests filtered by ``intent.created_at``, a lookup by a client-chosen id the submit
    carried such as ``intent.key``) and match what they return against ``intent``. Never submit
    anything: core never resubmits a submission that may exist.

    * ``found``: exactly one job matches; core records it and collects it like any other job.
    * ``not_found``: the provider's records are complete for the window ``intent.created_at`` ..
      ``created_at + intent.timeout`` (allow for clock skew) and hold no match. Core records the
      submission ``not_found``: the caller may submit again without paying twice.
    * ``cannot_tell``: anything less certain (several matches, inputs the provider already
      deleted, a listing that does not reach back far enough or omits unfinished requests). The
      record stays ``unknown`` and a later ``resume()`` asks again.

    A plugin without this hook is ``cannot_tell`` and its unknown records are not revisited.

    :param config: the attempt's config, as the ledger recorded it (the API key resolved again).
    :param intent: the :class:`~tarash.tarash_gateway.plugin.SubmissionIntent`: ledger key
        (= idempotency key), provider, model, modality, ``created_at``, ``timeout`` and the request
        as plain JSON without media bytes.
    :param context: as for the lifecycle hooks; ``timeout`` bounds the lookup.
    :returns: a flow returning a :class:`~tarash.tarash_gateway.plugin.Reconciliation`.

    Example (tarash-replicate, simplified)::

        @hookimpl
        def reconcile(config, intent, context):
            answer = yield Request(method="GET", url="/v1/predictions",
                                   params={"created_after": _iso(intent.created_at)})
            prompt = intent.request["prompt"]
            same = [p for p in answer.json()["results"] if p["input"].get("prompt") == prompt]
            if len(same) == 1:
                return Reconciliation(verdict="found", job=_submitted(same[0]))
            return Reconciliation(verdict="not_found" if not same else "cannot_tell")
    """
    raise NotImplementedError


# ----------------------------------------------------------------------------------------------
# Blocking calls (an API that answers a generation in one request)
# ----------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def generate_video(
    config: VideoGenerationConfig, request: VideoGenerationRequest, context: CallContext
) -> Flow[VideoGenerationResponse]:
    """Generate a video with requests that answer with the finished output (no job to poll).

    Used only for a provider whose plugin has no :func:`submit`. Core sends the flow's requests
    like any other; once one may have reached the provider it is never resent (a lost answer is
    ``UnknownSubmissionError``), and the deadline cannot cancel anything.

    :returns: a flow returning the finished ``VideoGenerationResponse``.
    :raises UnsupportedModalityError: the provider has no video.

    Example::

        @hookimpl
        def generate_video(config, request, context):
            answer = yield Request(method="POST", url="/v1/videos", json={"prompt": request.prompt})
            return VideoGenerationResponse(request_id=answer.json()["id"], video=answer.json()["url"])
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def generate_image(
    config: ImageGenerationConfig, request: ImageGenerationRequest, context: CallContext
) -> Flow[ImageGenerationResponse]:
    """Generate images with requests that answer with the finished output (see
    :func:`generate_video`)."""
    raise NotImplementedError


# ----------------------------------------------------------------------------------------------
# The escape hatch: a vendor SDK
# ----------------------------------------------------------------------------------------------


class AsyncLifecycle(Protocol):
    """Four coroutines driving a provider through its vendor SDK (see :func:`async_lifecycle`)."""

    async def submit(self, config: Any, request: Any, context: CallContext) -> SubmittedJob: ...
    async def status(self, config: Any, job: JobRef, context: CallContext) -> JobStatus: ...
    async def result(self, config: Any, job: JobRef, context: CallContext) -> Any: ...
    async def cancel(self, config: Any, job: JobRef, context: CallContext) -> bool: ...


@hookspec(firstresult=True)
def async_lifecycle(provider: str) -> AsyncLifecycle | None:
    """The escape hatch: a provider driven through a vendor SDK that does its own I/O.

    Right only when the provider cannot be described as HTTP requests: a wire protocol that is not
    HTTP, request signing only the SDK implements, or a streaming session. Everything else should
    be flows, which keep core's transport guarantees (deadline on every socket, was-it-sent
    decided once, pooled connections). Core calls these coroutines from the async API and bridges
    them to the sync API on its background loop; it still owns polling, deadlines (by cancelling
    the coroutine), retries on the typed errors the methods raise, fallbacks and the ledger. The
    methods must raise ``HTTPConnectionError(request_sent=False)`` only when a request provably
    never left.

    :returns: an object with the four ``async`` methods of :class:`AsyncLifecycle`, or ``None``.
    """


# ----------------------------------------------------------------------------------------------
# Pricing (core computes every cost; a plugin says how its provider bills)
# ----------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def pricing_rules(provider: str) -> Sequence[PricingRule] | None:
    """How ``provider`` bills each model family: what the quantity is.

    Core multiplies the quantity it computes from the request (seconds x number of videos,
    images, megapixels rounded up per image...; see
    :class:`~tarash.tarash_gateway.costs.PricingRule`) by a unit price from, best first: the
    user's overrides, the provider's price API (:func:`unit_prices`), the bundled price table.
    The rule's ``variant_field`` picks a price variant (``"resolution"``: ``"720p"``,
    ``"1080p"``...). A model no rule matches has no estimate (its cost is unknown, never 0).

    :returns: the rules (the longest matching ``prefix`` wins; ``""`` matches every model).
        Called before every submit: return the same tuple while nothing changed and core keeps
        its match per model. ``PricingRule.per_family(SPEC.models, variant_field=...,
        default_seconds=...)`` makes one rule per family (video per second, images each) and
        does that (tarash-example-provider uses it).

    Example (tarash-fal)::

        @hookimpl
        def pricing_rules(provider):
            return [PricingRule(prefix="fal-ai/veo3.1", modality="video", unit="second",
                                variant_field="resolution", default_variant="720p",
                                default_seconds=8),
                    PricingRule(prefix="fal-ai/flux", modality="image", unit="megapixel",
                                default_size="1024x768")]
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def unit_prices(config: AnyConfig, request: AnyRequest, context: CallContext) -> Flow[UnitPrice | None]:
    """The provider's price API: the price of one unit of ``config.model`` for this account.

    Core calls it before submit, after its own checks of the request, sends its requests with the
    attempt's key and deadline, and caches the answer (or its absence, or its failure) per
    gateway for an hour. An error answer or a failure only means "no price from the API".
    Check ``request`` first the way :func:`submit` does, raising ``ValidationError`` before
    yielding anything: an impossible request then sends nothing at all, not even a price read.

    :returns: a :class:`~tarash.tarash_gateway.costs.UnitPrice` (``source="provider-price-api"``),
        or ``None`` when the API has no price for the model.

    Example (tarash-fal)::

        @hookimpl
        def unit_prices(config, request, context):
            _payload(config, request)  # raises ValidationError for an impossible request
            answer = yield Request(method="GET", url=PRICING_URL,
                                   params={"endpoint_id": config.model})
            entry = answer.json()["prices"][0]
            return UnitPrice(unit=entry["unit"], price=str(entry["unit_price"]),
                             currency=entry["currency"], source="provider-price-api")
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def reported_usage(config: AnyConfig, response: AnyResponse) -> ReportedUsage | None:
    """What the provider's answer says this call used or cost (a ``usage`` block).

    Called once the generation succeeded. A reported ``amount`` becomes the attempt's cost as
    billed; a reported ``quantity`` (image tokens) is priced like an estimate.

    :returns: a :class:`~tarash.tarash_gateway.costs.ReportedUsage`, or ``None``.

    Example (tarash-openai)::

        @hookimpl
        def reported_usage(config, response):
            usage = response.raw_response.get("usage") or {}
            tokens = usage.get("output_tokens")
            return None if tokens is None else ReportedUsage(unit="token", quantity=tokens)
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def billed_costs(
    config: AnyConfig, job_ids: Sequence[str], context: CallContext
) -> Flow[Mapping[str, ReportedUsage]]:
    """What the provider's billing records say it charged for ``job_ids`` (up to 50 at a time).

    For ``tarash costs reconcile``: ``config.api_key`` is the key the billing records need (fal:
    an admin key); core sends the requests and records each amount beside the job's estimate.

    :returns: ``{job id: ReportedUsage}`` with ``amount`` set, for the jobs the records name.
    """
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


# ----------------------------------------------------------------------------------------------
# Webhooks (a provider that delivers job completions to a URL)
# ----------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def verify_webhook(
    provider: str, headers: Mapping[str, str], body: bytes, context: WebhookContext
) -> Flow[WebhookEvent]:
    """Verify one webhook delivery and parse it into a typed event.

    Called by :class:`~tarash.tarash_gateway.webhooks.WebhookReceiver` (only on the plugin that
    registered ``provider``) for each ``POST /{provider}`` it receives, before anything is
    applied. Check everything the provider signs (signature over the *raw* ``body``, timestamp
    against ``context.now``) before trusting a byte of it. Like the lifecycle hooks it returns a
    flow: fetching the provider's public keys is a yielded ``Request`` (``auth=False``) that the
    receiver sends within ``context.timeout``; cache keys in the plugin so most deliveries yield
    nothing.

    :param provider: the provider the delivery was addressed to (the path segment).
    :param headers: the delivery's headers, names lower-cased (repeated headers joined by ``", "``).
    :param body: the raw body, exactly as received.
    :param context: :class:`~tarash.tarash_gateway.webhooks.WebhookContext`: ``now``,
        ``timeout`` and the receiver's ``options`` for this provider (e.g. a key set URL).
    :returns: a flow returning a :class:`~tarash.tarash_gateway.webhooks.WebhookEvent` for
        ``provider`` (job id, state, output or error). The receiver dedupes on
        ``(provider, job_id, delivery_id)``, so the hook need not.
    :raises WebhookVerificationError: the delivery is not authentic or not an event (missing
        header, stale timestamp, bad signature, unknown key, malformed body); answered 401.

    Example (tarash-fal)::

        @hookimpl
        def verify_webhook(provider, headers, body, context):
            from tarash_fal.webhooks import verify_flow

            return (yield from verify_flow(headers, body, now=context.now, **context.options))
    """
    raise NotImplementedError
