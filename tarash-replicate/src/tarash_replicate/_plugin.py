"""Entry point of tarash-replicate (``[project.entry-points.tarash] replicate = ...``).

Only hook implementations live here, and the module stays cheap: discovery imports it and the
registration records; the model tables are :class:`~tarash.tarash_gateway.plugin.Lazy`, and the
module holding the flows is imported inside the hooks, on the first Replicate call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tarash.tarash_gateway.plugin import ProviderSpec, hookimpl

from ._spec import SPEC

if TYPE_CHECKING:
    from tarash.tarash_gateway.plugin import (
        CallContext,
        Flow,
        JobRef,
        JobStatus,
        Reconciliation,
        SubmissionIntent,
        SubmittedJob,
    )


@hookimpl
def register_providers() -> Sequence[ProviderSpec]:
    return [SPEC]


@hookimpl
def submit(config: Any, request: Any, context: CallContext) -> Flow[SubmittedJob]:
    from . import _flows

    return (yield from _flows.submit(config, request, context))


@hookimpl
def status(config: Any, job: JobRef, context: CallContext) -> Flow[JobStatus]:
    from . import _flows

    return (yield from _flows.status(config, job, context))


@hookimpl
def result(config: Any, job: JobRef, context: CallContext) -> Flow[Any]:
    from . import _flows

    return (yield from _flows.result(config, job, context))


@hookimpl
def cancel(config: Any, job: JobRef, context: CallContext) -> Flow[bool]:
    from . import _flows

    return (yield from _flows.cancel(config, job, context))


@hookimpl
def reconcile(config: Any, intent: SubmissionIntent, context: CallContext) -> Flow[Reconciliation]:
    """Look the lost create up in ``GET /v1/predictions`` (see ``_reconcile``)."""
    from . import _reconcile

    return (yield from _reconcile.reconcile(config, intent, context))


@hookimpl
def verify_webhook(provider: str, headers: Any, body: bytes, context: Any) -> Any:
    """Verify a Standard Webhooks delivery with the receiver's signing secret; its typed event."""
    from .webhooks import verify_webhook as flow

    return flow(provider, headers, body, context)


@hookimpl
def pricing_rules(provider: str) -> tuple[Any, ...]:
    """Video per second (a price per resolution where the model takes one), images each."""
    from tarash.tarash_gateway.plugin import PricingRule

    return PricingRule.per_family(SPEC.models, variant_field="resolution")
