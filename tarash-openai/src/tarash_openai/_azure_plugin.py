"""Entry point of the ``azure-openai`` provider (``[project.entry-points.tarash] azure-openai``).

The same flows as ``openai`` (``_plugin``); only the registered provider differs. One entry point
per provider name, as the conformance kit and ``tarash plugins`` expect.
"""

from __future__ import annotations

from collections.abc import Sequence

from tarash.tarash_gateway.plugin import ProviderSpec, hookimpl

from ._plugin import generate_image, pricing_rules, reported_usage
from ._specs import AZURE_SPEC

__all__ = ["generate_image", "pricing_rules", "register_providers", "reported_usage"]


@hookimpl
def register_providers() -> Sequence[ProviderSpec]:
    return [AZURE_SPEC]
