"""What generations cost: estimates before submit, costs on every attempt, limits and budgets.

* Every attempt carries a :class:`Cost` (``AttemptMetadata.cost``), summed on
  ``ExecutionMetadata.total_cost``; attempts the provider bills although they failed carry theirs,
  attempts refused before submit cost zero.
* :func:`estimate_cost` prices a request without sending it (``tarash generate --dry-run``).
* ``config.max_cost`` refuses a call before submit (:class:`CostLimitExceededError`);
  :func:`set_budget` caps what the gateway may spend in a period, across processes sharing the
  ledger (:class:`BudgetExceededError`).
* Prices: what the provider reports for the call, then :func:`set_price` overrides and the file
  ``<data dir>/prices.json``, then the provider's price API, then the bundled table (see
  :mod:`tarash.tarash_gateway._pricing`). Plugins say how their models are billed with
  :class:`PricingRule` (the ``pricing_rules`` hook).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._cost import Cost, PricingRule, ReportedUsage, UnitPrice
from ._gateway import default_gateway
from .exceptions import BudgetExceededError, CostLimitExceededError

if TYPE_CHECKING:
    from decimal import Decimal

    from .models import AnyConfig, AnyRequest

__all__ = [
    "BudgetExceededError",
    "Cost",
    "CostLimitExceededError",
    "PricingRule",
    "ReportedUsage",
    "UnitPrice",
    "estimate_cost",
    "estimate_cost_async",
    "set_price",
]


def estimate_cost(config: AnyConfig, request: AnyRequest, *, price_api: bool = True) -> Cost | None:
    """The expected cost of ``request`` on ``config`` (its first config), priced as the generation
    would price it before submit; nothing is submitted. None when it cannot be known (no pricing
    rule, a duration left to the provider, no price). ``price_api=False``: not even the
    provider's price API is asked (nothing is sent). On the default gateway."""
    return default_gateway().estimate_cost(config, request, price_api=price_api)


async def estimate_cost_async(
    config: AnyConfig, request: AnyRequest, *, price_api: bool = True
) -> Cost | None:
    """Async :func:`estimate_cost`."""
    return await default_gateway().estimate_cost_async(config, request, price_api=price_api)


def set_price(
    provider: str,
    model: str,
    *,
    unit: str,
    price: Decimal | int | str | None = None,
    variants: dict[str, Any] | None = None,
    currency: str = "USD",
) -> None:
    """Override the price of ``model`` (a prefix: it covers the models below it) at ``provider``
    on the default gateway; it wins over the price API and the bundled table."""
    default_gateway().set_price(provider, model, unit=unit, price=price, variants=variants, currency=currency)
