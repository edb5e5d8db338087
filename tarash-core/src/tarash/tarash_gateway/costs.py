"""What generations cost: estimates before submit, costs on every attempt, limits and budgets.

* Every attempt carries a :class:`Cost` (``AttemptMetadata.cost``), summed on
  ``ExecutionMetadata.total_cost``; attempts the provider bills although they failed carry theirs,
  attempts refused before submit cost zero.
* :func:`estimate_cost` prices a request without sending it (``tarash generate --dry-run``).
* ``config.max_cost`` refuses a call before submit (:class:`CostLimitExceededError`);
  :func:`set_budget` caps what the gateway may spend in a period, across processes sharing the
  ledger (:class:`BudgetExceededError`; :class:`BudgetUnavailableError` when it cannot be checked).
* Prices: what the provider reports for the call, then :func:`set_price` overrides and the file
  ``<data dir>/prices.json``, then the provider's price API, then the bundled table (see
  :mod:`tarash.tarash_gateway._pricing`). Plugins say how their models are billed with
  :class:`PricingRule` (the ``pricing_rules`` hook).
* :func:`reconcile` records what the provider billed (its billing records, with an admin key)
  beside each job's estimate in the ledger (``tarash costs reconcile``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._cost import Cost, PricingRule, ReportedUsage, UnitPrice
from ._gateway import default_gateway
from .exceptions import BudgetExceededError, BudgetUnavailableError, CostLimitExceededError, LedgerError

if TYPE_CHECKING:
    from decimal import Decimal

    from ._gateway import Gateway
    from .models import AnyConfig, AnyRequest

__all__ = [
    "BudgetExceededError",
    "BudgetUnavailableError",
    "Cost",
    "CostLimitExceededError",
    "PricingRule",
    "Reconciled",
    "ReportedUsage",
    "UnitPrice",
    "estimate_cost",
    "estimate_cost_async",
    "reconcile",
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


@attrs.frozen(kw_only=True)
class Reconciled:
    """One ledger job whose bill was read: its estimate (as recorded) and what was billed."""

    key: str
    job_id: str
    estimate: Cost | None
    billed: Cost


def reconcile(
    provider: str,
    *,
    admin_key: str,
    base_url: str | None = None,
    provider_config: Mapping[str, Any] | None = None,
    gateway: Gateway | None = None,
) -> list[Reconciled]:
    """Read what ``provider`` billed for the ledger's jobs (its billing records, with an admin
    key: fal's ``GET /v1/models/billing-events``) and record it beside each estimate
    (``JobRecord.billed``); returns the jobs found billed, oldest first."""
    # lazy: the engine and the ledger load at the first reconcile
    from . import _runtime as rt
    from ._codec import structure
    from ._plain import unstructure
    from ._reconcile import reconcile_flow

    gateway = gateway or default_gateway()
    ledger = gateway.ledger()
    if ledger is None:
        raise LedgerError("Reconciling reads the job ledger, and it is off")
    store = ledger.spend_store()
    records = [r for r in ledger.store.records() if r.provider == provider and r.job_id]
    flow = reconcile_flow(
        gateway, provider, records, admin_key=admin_key, base_url=base_url, provider_config=provider_config
    )
    billed = rt.drive_sync(flow, gateway.background)
    found = []
    for record in records:
        cost = billed.get(record.job_id)
        if cost is None:
            continue
        store.record_billed(record.key, billed=unstructure(cost))
        estimate = structure(record.cost, Cost) if record.cost else None
        found.append(Reconciled(key=record.key, job_id=str(record.job_id), estimate=estimate, billed=cost))
    return found
