"""The ``fal`` entry point: the provider's record and its lifecycle hooks.

Kept cheap on purpose: importing it imports neither fal-client nor the model registry; each hook
imports the flows of ``tarash_fal._provider`` when first called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tarash.tarash_gateway.plugin import Capabilities, Lazy, ProviderSpec, hookimpl

if TYPE_CHECKING:
    from tarash.tarash_gateway.plugin import (
        CallContext,
        Flow,
        JobRef,
        JobStatus,
        PricingRule,
        Reconciliation,
        ReportedUsage,
        SubmissionIntent,
        SubmittedJob,
        UnitPrice,
    )
    from tarash.tarash_gateway.webhooks import WebhookContext, WebhookEvent


#: (the user's model table: its path and bytes, the families saved in it).
_SAVED: tuple[tuple[Any, bytes | None], tuple[Any, ...]] | None = None
#: (the user's families, the built-in ones followed by theirs).
_ALL: tuple[tuple[Any, ...], tuple[Any, ...]] | None = None


def _user_families() -> tuple[Any, ...]:
    """The models saved by ``tarash fal add-model`` (an unreadable table is logged and skipped).

    Every generation asks (for its pricing rule): the table is parsed again only when its bytes
    changed, and the same bytes give the same tuple."""
    global _SAVED
    from ._commands import user_models_path

    path = user_models_path()
    seen: tuple[Any, bytes | None]
    try:
        seen = (path, path.read_bytes())
    except FileNotFoundError:
        seen = (path, None)
    except OSError as exc:
        _log().warning("Your fal model table was not loaded: %s", exc)
        seen = (path, None)
    saved = _SAVED
    if saved is None or saved[0] != seen:
        saved = _SAVED = (seen, _parse_user_families(*seen))
    return saved[1]


def _parse_user_families(path: Any, text: bytes | None) -> tuple[Any, ...]:
    from tarash.tarash_gateway.exceptions import TarashException

    from ._commands import parse_user_models
    from ._schema import family_from_spec

    if text is None:
        return ()
    try:
        return tuple(family_from_spec(spec) for spec in parse_user_models(text, path).values())
    except (TarashException, KeyError, TypeError) as exc:
        _log().warning("Your fal model table was not loaded: %s", exc)
        return ()


def _log() -> Any:
    from tarash.tarash_gateway.utils import get_logger

    return get_logger("tarash.fal")


def _families() -> Any:
    """The built-in families and the user's (the same tuple while the user's table is unchanged)."""
    global _ALL
    from ._registry import FAMILIES

    saved = _user_families()
    known = _ALL
    if known is None or known[0] is not saved:
        known = _ALL = (saved, (*FAMILIES, *(family.record for family in saved)))
    return known[1]


def _mappings() -> Any:
    from ._registry import IMAGE_MAPPINGS, VIDEO_MAPPINGS

    saved = {family.record.prefix: family.mapping for family in _user_families()}
    return {**VIDEO_MAPPINGS, **IMAGE_MAPPINGS, **saved}


@hookimpl
def register_providers() -> list[ProviderSpec]:
    """The ``fal`` provider: video and image models on fal's queue API.

    The model tables are :class:`Lazy`: discovery does not import the registry. They include the
    models saved with ``tarash fal add-model``.
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
            base_url="https://queue.fal.run",
            auth_scheme="Key",
            description="fal.ai queue API (Veo, Kling, Wan, Sora, Flux and more).",
        )
    ]


@hookimpl
def resolve_api_key(provider: str) -> str | None:
    """``FAL_KEY_ID``/``FAL_KEY_SECRET`` (or a Colab secret), through fal-client's own lookup."""
    if provider != "fal":
        return None
    from fal_client.auth import MissingCredentialsError, fetch_credentials

    try:
        return fetch_credentials()
    except MissingCredentialsError:
        return None


@hookimpl
def submit(config: Any, request: Any, context: CallContext) -> Flow[SubmittedJob]:
    """Submit a generation to fal's queue."""
    from . import _provider

    return _provider.submit(config, request, context)


@hookimpl
def status(config: Any, job: JobRef, context: CallContext) -> Flow[JobStatus]:
    """One status check of a fal job (queue position, logs)."""
    from . import _provider

    return _provider.status(config, job, context)


@hookimpl
def result(config: Any, job: JobRef, context: CallContext) -> Flow[Any]:
    """The output of a completed fal job."""
    from . import _provider

    return _provider.result(config, job, context)


@hookimpl
def cancel(config: Any, job: JobRef, context: CallContext) -> Flow[bool]:
    """Cancel a fal job; False when it had already finished."""
    from . import _provider

    return _provider.cancel(config, job, context)


@hookimpl
def reconcile(config: Any, intent: SubmissionIntent, context: CallContext) -> Flow[Reconciliation]:
    """Look the lost submit up in fal's platform API (requests by endpoint; see ``_reconcile``)."""
    from . import _reconcile

    return (yield from _reconcile.reconcile(config, intent, context))


@hookimpl
def verify_webhook(provider: str, headers: Any, body: bytes, context: WebhookContext) -> Flow[WebhookEvent]:
    """Verify a fal delivery's ED25519 signature against fal's JWKS; its typed event."""
    from .webhooks import verify_webhook as flow

    return flow(provider, headers, body, context)


@hookimpl
def register_commands(subparsers: Any) -> None:
    """``tarash fal add-model ENDPOINT_ID``: a model's mapping from its published schema."""
    from ._commands import add_commands

    add_commands(subparsers)


@hookimpl
def pricing_rules(provider: str) -> Sequence[PricingRule]:
    """Video per second (a price per resolution), FLUX images per megapixel rounded up, other
    images per image (see ``tarash_fal._pricing``)."""
    from ._pricing import pricing_rules as rules

    return rules()


@hookimpl
def unit_prices(config: Any, request: Any, context: CallContext) -> Flow[UnitPrice | None]:
    """The account's price for the model from fal's ``GET /v1/models/pricing`` (the request is
    checked first, as submit checks it: an impossible one sends nothing)."""
    from ._pricing import unit_prices_flow

    return unit_prices_flow(config, request, context)


@hookimpl
def billed_costs(config: Any, job_ids: Sequence[str], context: CallContext) -> Flow[dict[str, ReportedUsage]]:
    """What fal billed for the jobs, from ``GET /v1/models/billing-events`` (an admin key)."""
    from ._pricing import billed_costs_flow

    return billed_costs_flow(config, job_ids, context)
