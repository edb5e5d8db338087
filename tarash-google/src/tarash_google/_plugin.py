"""Entry point ``google``: the Gemini Developer API (API key), provider ``google``.

Discovery imports only this module and :mod:`._specs` (tarash-core's plugin module); the flows
are imported inside the hooks, and the lifecycle records are named for type checkers only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tarash.tarash_gateway.plugin import ProviderSpec, hookimpl

from ._specs import GEMINI_SPEC

if TYPE_CHECKING:
    from tarash.tarash_gateway.plugin import CallContext, Flow, JobRef, JobStatus, SubmittedJob


@hookimpl
def register_providers() -> Sequence[ProviderSpec]:
    return [GEMINI_SPEC]


@hookimpl
def submit(config: Any, request: Any, context: CallContext) -> Flow[SubmittedJob]:
    from . import _flows

    return _flows.submit("gemini", config, request, context)


@hookimpl
def status(config: Any, job: JobRef, context: CallContext) -> Flow[JobStatus]:
    from . import _flows

    return _flows.status("gemini", config, job, context)


@hookimpl
def result(config: Any, job: JobRef, context: CallContext) -> Flow[Any]:
    from . import _flows

    return _flows.result("gemini", config, job, context)


@hookimpl
def pricing_rules(provider: str) -> tuple[Any, ...]:
    """Veo and Omni video per second (a price per resolution; 8 s when unset), images each."""
    from tarash.tarash_gateway.plugin import PricingRule

    return PricingRule.per_family(GEMINI_SPEC.models, variant_field="resolution", default_seconds=8)
