"""Entry point ``google-vertex``: Vertex AI (OAuth from a credentials file), provider ``google-vertex``.

A separate entry module because ProviderSpec binds the auth header, the key requirement and
Capabilities.cancel per provider, and core calls a provider's lifecycle hooks on the plugin that
registered it: Vertex cancels, the Gemini Developer API plugin does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tarash.tarash_gateway.plugin import ProviderSpec, hookimpl

from ._specs import VERTEX_SPEC

if TYPE_CHECKING:
    from tarash.tarash_gateway.plugin import CallContext, Flow, JobRef, JobStatus, SubmittedJob


@hookimpl
def register_providers() -> Sequence[ProviderSpec]:
    return [VERTEX_SPEC]


@hookimpl
def submit(config: Any, request: Any, context: CallContext) -> Flow[SubmittedJob]:
    from . import _flows

    return _flows.submit("vertex", config, request, context)


@hookimpl
def status(config: Any, job: JobRef, context: CallContext) -> Flow[JobStatus]:
    from . import _flows

    return _flows.status("vertex", config, job, context)


@hookimpl
def result(config: Any, job: JobRef, context: CallContext) -> Flow[Any]:
    from . import _flows

    return _flows.result("vertex", config, job, context)


@hookimpl
def cancel(config: Any, job: JobRef, context: CallContext) -> Flow[bool]:
    from . import _flows

    return _flows.cancel("vertex", config, job, context)


@hookimpl
def pricing_rules(provider: str) -> tuple[Any, ...]:
    """Veo and Omni video per second (a price per resolution; 8 s when unset), images each."""
    from tarash.tarash_gateway.plugin import PricingRule

    return PricingRule.per_family(VERTEX_SPEC.models, variant_field="resolution", default_seconds=8)
