"""The Tarash provider conformance kit (install ``tarash-core[testing]``).

Subclass :class:`ProviderConformanceTests` in your plugin's tests and opt in to the kit's pytest
plugin with ``pytest_plugins = ["tarash.tarash_gateway.testing.plugin"]``; the class docstring is
the manual. Nothing here is imported by ``import tarash.tarash_gateway``.
"""

from __future__ import annotations

from ._harness import ConfigFactory, CountsFn, Harness
from ._scenarios import SCENARIOS, Scenario
from ._suite import ProviderConformanceTests

__all__ = [
    "SCENARIOS",
    "ConfigFactory",
    "CountsFn",
    "Harness",
    "ProviderConformanceTests",
    "Scenario",
]
