"""A gateway-wide budget for a period, kept in the job ledger so every process sharing the
ledger (one machine's SQLite file, a fleet's PostgreSQL database) honours it.

The budget is ``{amount, currency, period}`` under the name ``"default"`` in the ledger. Before
each submit, what the ledger recorded for the jobs created since the period began (UTC: today,
this ISO week, this month) in the budget's currency, plus the attempt's estimate, must not exceed
it. A job's cost is its estimate from its intent on, replaced by what it was charged when it
ends, so jobs in flight count. The check and the intent are two writes: two processes starting
at the same instant may both pass it (each sees the other only once its intent is written).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from ._cost import Cost, to_decimal
from ._redact import get_logger
from .exceptions import BudgetExceededError, LedgerError, ValidationError

if TYPE_CHECKING:
    from ._engine import Attempt
    from ._ledger import LedgerAdapter

__all__ = ["BUDGET_NAME", "PERIODS", "check_budget", "get_budget", "period_start", "set_budget", "spent"]

log = get_logger("tarash.costs")

BUDGET_NAME = "default"
PERIODS = ("day", "week", "month")


def period_start(period: str, now: datetime | None = None) -> datetime:
    """When the current ``period`` began (UTC midnight; Monday for a week; the 1st for a month)."""
    now = now or datetime.now(timezone.utc)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def set_budget(ledger: LedgerAdapter | None, amount: Any, *, period: str, currency: str) -> None:
    """Keep the budget in the ledger (``amount`` None removes it)."""
    if ledger is None:
        raise LedgerError("A budget is kept in the job ledger, and it is off: turn it on to set one")
    if period not in PERIODS:
        raise ValidationError(
            f"period must be one of {', '.join(PERIODS)}; got {period!r}", field="period", value=period
        )
    if amount is None:
        ledger.spend_store().set_budget(BUDGET_NAME, None)
        return
    if not (len(currency) == 3 and currency.isalpha() and currency.isupper()):
        raise ValidationError(
            f"currency must be an ISO 4217 code such as 'USD', got {currency!r}", field="currency"
        )
    budget = {"amount": str(to_decimal(amount, "amount")), "currency": currency, "period": period}
    ledger.spend_store().set_budget(BUDGET_NAME, budget)


def get_budget(ledger: LedgerAdapter | None) -> dict[str, Any] | None:
    """The budget kept in the ledger, or None."""
    if ledger is None:
        return None
    return ledger.spend_store().get_budget(BUDGET_NAME)


def spent(ledger: LedgerAdapter, period: str, currency: str) -> Decimal:
    """What the ledger recorded in ``currency`` for the jobs created since ``period`` began."""
    since = period_start(period).timestamp()
    ledger.flush()  # this process's queued cost writes count too
    costs = ledger.spend_store().costs_since(since)
    return sum((Decimal(c["amount"]) for c in costs if c.get("currency") == currency), Decimal(0))


def check_budget(attempt: Attempt, estimate: Cost | None) -> None:
    """Raise BudgetExceededError when the estimate does not fit in what is left of the budget,
    or when a budget is set and the attempt's cost cannot be estimated."""
    ledger = cast("LedgerAdapter | None", attempt.ledger)
    if ledger is None:
        return
    try:
        budget = get_budget(ledger)
    except LedgerError:
        return  # a store that keeps no budgets
    except Exception as exc:
        # The submit intent, written next to the same store, fails closed if the store is broken.
        log.warning(
            "The budget could not be read from %r (%s: %s); not checked",
            ledger.store,
            type(exc).__name__,
            exc,
        )
        return
    if budget is None:
        return
    limit = Decimal(budget["amount"])
    if estimate is None:
        raise BudgetExceededError(
            f"A budget per {budget['period']} of of {limit} {budget['currency']} is set but the cost of "
            f"{attempt.provider}/{attempt.model} cannot be estimated (no pricing rule or price): "
            "refused before submit. Set a price with Gateway.set_price() or in the prices file.",
            estimate=None,
            limit=limit,
            provider=attempt.provider,
            model=attempt.model,
        )
    if budget["currency"] != estimate.currency:
        return
    used = spent(ledger, budget["period"], budget["currency"])
    if used + estimate.amount > limit:
        raise BudgetExceededError(
            f"Expected cost {estimate.amount} {estimate.currency} exceeds what is left of the "
            f"{budget['period']}'s budget: {used} of {limit} {budget['currency']} already spent. "
            "Refused before submit, nothing was sent.",
            estimate=estimate,
            limit=limit,
            spent=used,
            provider=attempt.provider,
            model=attempt.model,
        )
