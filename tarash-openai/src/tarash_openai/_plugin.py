"""Entry point of the ``openai`` provider (``[project.entry-points.tarash] openai = ...``).

Only hook implementations live here (``_azure_plugin`` reuses the image and video hooks).
Discovery imports this module, so it imports tarash-core's plugin module and the provider records
only: the flow and the model table are imported inside the hooks, and the records the hooks name
in annotations are imported for type checkers only.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

from tarash.tarash_gateway.plugin import ProviderSpec, hookimpl

from ._specs import OPENAI_SPEC

if TYPE_CHECKING:
    from tarash.tarash_gateway.plugin import CallContext, Request, Response


@hookimpl
def register_providers() -> Sequence[ProviderSpec]:
    return [OPENAI_SPEC]


@hookimpl
def generate_image(config: Any, request: Any, context: CallContext) -> Generator[Request, Response, Any]:
    from . import _flow

    return (yield from _flow.generate_image(config, request, context))


@hookimpl
def pricing_rules(provider: str) -> tuple[Any, ...]:
    """GPT Image is billed per image, at a price per quality (``low``, ``medium``, ``high``)."""
    from tarash.tarash_gateway.plugin import PricingRule

    return PricingRule.per_family(OPENAI_SPEC.models, variant_field="quality")


@hookimpl
def reported_usage(config: Any, response: Any) -> Any:
    """The call's cost from the answer's ``usage`` (tokens at the published per-token rates), when
    the provider's model has sourced rates; otherwise None and the per-image estimate stands."""
    from ._usage import reported_usage as from_usage

    return from_usage(config.provider, config.model, getattr(response, "raw_response", None))
