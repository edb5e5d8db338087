"""A gateway-wide budget for a period, kept in the job ledger so every process sharing the
ledger (one machine's SQLite file, a fleet's PostgreSQL database) honours it.

The budget is ``{amount, currency, period}`` under the name ``"default"`` in the ledger. Before
each submit, what the ledger recorded for the jobs created since the period began (UTC: today,
this ISO week, this month) in the budget's currency, plus the attempt's estimate, must not exceed
it. A job's cost is its estimate from its intent on, replaced by what it was charged when it
ends, so jobs in flight count. The check and the intent (with its estimate) are one transaction
serialised per budget (:class:`BudgetCheck`, run by the store), so processes, threads or a
fleet's workers starting at the same instant never together pass the last of a budget.

A budget that cannot be checked (its currency is not the estimate's, a recorded cost or the
budget itself cannot be read) refuses the call with :class:`BudgetUnavailableError`, unless it
was set with ``fail_open=True`` (then the call goes ahead, with a warning). A ledger that fails
refuses it with LedgerError, as every intent that cannot be recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from ._cost import Cost, to_decimal
from ._redact import get_logger
from .exceptions import BudgetExceededError, BudgetUnavailableError, LedgerError, ValidationError

if TYPE_CHECKING:
    from ._engine import Attempt
    from ._ledger import LedgerAdapter

__all__ = ["BUDGET_NAME", "PERIODS", "BudgetCheck", "get_budget", "period_start", "set_budget", "spent"]

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


def set_budget(
    ledger: LedgerAdapter | None, amount: Any, *, period: str, currency: str, fail_open: bool = False
) -> None:
    """Keep the budget in the ledger (``amount`` None removes it); ``fail_open``: a call it cannot
    check goes ahead (with a warning) instead of being refused."""
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
    budget: dict[str, Any] = {
        "amount": str(to_decimal(amount, "amount")),
        "currency": currency,
        "period": period,
    }
    if fail_open:
        budget["fail_open"] = True
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


@attrs.frozen
class BudgetCheck:
    """Whether the budget admits ``attempt`` with its ``estimate``: called by the store inside the
    transaction that records the attempt's intent (``budget`` None: none is set)."""

    attempt: Attempt
    estimate: Cost | None
    name: str = BUDGET_NAME

    def __call__(
        self, budget: Mapping[str, Any] | None, costs_since: Callable[[float], list[dict[str, Any]]]
    ) -> None:
        if budget is None:
            return
        attempt, estimate = self.attempt, self.estimate
        try:
            limit, currency, period = to_decimal(budget["amount"]), budget["currency"], budget["period"]
            if period not in PERIODS:
                raise ValueError(f"unknown period {period!r}")
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            raise BudgetUnavailableError(
                f"The budget in the job ledger cannot be read ({type(exc).__name__}: {exc}): refused "
                "before submit, nothing was sent. Set it again with Gateway.set_budget().",
                provider=attempt.provider,
                model=attempt.model,
                phase="validate",
            ) from None
        if estimate is None:
            raise BudgetExceededError(
                f"A budget per {period} of {limit} {currency} is set but the cost of "
                f"{attempt.provider}/{attempt.model} cannot be estimated (no pricing rule or price): "
                "refused before submit. Set a price with Gateway.set_price() or in the prices file.",
                estimate=None,
                limit=limit,
                provider=attempt.provider,
                model=attempt.model,
            )
        if estimate.currency != currency:
            self._unchecked(budget, f"the expected cost is in {estimate.currency}, the budget in {currency}")
            return
        costs = costs_since(period_start(period).timestamp())  # a store failure: LedgerError
        try:
            used = sum((Decimal(c["amount"]) for c in costs if c.get("currency") == currency), Decimal(0))
        except (AttributeError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            self._unchecked(
                budget, f"a cost recorded in the ledger cannot be read ({type(exc).__name__}: {exc})"
            )
            return
        if used + estimate.amount > limit:
            raise BudgetExceededError(
                f"Expected cost {estimate.amount} {estimate.currency} exceeds what is left of the "
                f"{period}'s budget: {used} of {limit} {currency} already spent. "
                "Refused before submit, nothing was sent.",
                estimate=estimate,
                limit=limit,
                spent=used,
                provider=attempt.provider,
                model=attempt.model,
            )

    def _unchecked(self, budget: Mapping[str, Any], why: str) -> None:
        """Refuse the call (BudgetUnavailableError) unless the budget was set to fail open."""
        where = f"{self.attempt.provider}/{self.attempt.model}"
        if budget.get("fail_open") is True:
            log.warning(
                "The budget cannot be checked for %s (%s); going ahead: it was set fail_open", where, why
            )
            return
        raise BudgetUnavailableError(
            f"The budget cannot be checked for {where} ({why}): refused before submit, nothing was "
            "sent. Set the budget with fail_open=True to let such calls through.",
            provider=self.attempt.provider,
            model=self.attempt.model,
            phase="validate",
        )
