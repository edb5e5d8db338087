"""What an attempt is charged, and the limits checked before it is submitted.

* Before submit (after the request was checked): the attempt's expected cost
  (:func:`~._pricing.price_attempt`) is refused when, with what earlier attempts of the call were
  charged, it exceeds ``config.max_cost`` (:class:`CostLimitExceededError`). What is left of the
  gateway's budget for the period is checked when its intent is recorded
  (:class:`~._budget.BudgetCheck`, :class:`BudgetExceededError`). Nothing is sent.
* When it ends, an attempt carries a :class:`~._cost.Cost`: a success what the provider reported
  (else the estimate); a failure the provider bills (the job started: it ran, completed with an
  error, or its result was not read; or the submit may have created it) the estimate; anything
  refused or stopped before the provider started it zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._cost import Cost
from ._pricing import billed_cost, price_attempt
from ._redact import get_logger
from .exceptions import CostLimitExceededError, ResultNotCollectedError

if TYPE_CHECKING:
    from ._engine import Attempt
    from .models import AttemptMetadata

__all__ = ["STARTED_STATES", "attempt_cost", "charged", "guard_cost", "record_usage"]

log = get_logger("tarash.costs")

#: Job states after which the provider has started the work (and bills it).
STARTED_STATES = frozenset({"processing", "completed", "failed"})


def charged(records: Sequence[AttemptMetadata]) -> Decimal:
    """What the attempts so far were charged."""
    return sum((r.cost.amount for r in records if r.cost is not None), Decimal(0))


def guard_cost(attempt: Attempt, run_flow: Callable[..., Any]) -> Any:
    """Flow: price the attempt (``attempt.estimate``; ``run_flow`` is the engine's, for the price
    API) and refuse it when it would exceed the call's ``max_cost``."""
    estimate: Cost | None = yield from price_attempt(attempt, run_flow)
    attempt.estimate = estimate
    limit = attempt.limit
    if limit is not None:
        if estimate is None:
            raise CostLimitExceededError(
                f"max_cost={limit} is set but the cost of {attempt.provider}/{attempt.model} cannot be "
                "estimated (no pricing rule or price): refused before submit. Set a price with "
                "Gateway.set_price() or in the prices file.",
                estimate=None,
                limit=limit,
                spent=attempt.spent,
                provider=attempt.provider,
                model=attempt.model,
            )
        if attempt.spent + estimate.amount > limit:
            earlier = f" plus {attempt.spent} charged by earlier attempts" if attempt.spent else ""
            raise CostLimitExceededError(
                f"Expected cost {estimate.amount} {estimate.currency}{earlier} exceeds max_cost={limit} "
                f"({estimate}): refused before submit, nothing was sent.",
                estimate=estimate,
                limit=limit,
                spent=attempt.spent,
                provider=attempt.provider,
                model=attempt.model,
            )


def record_usage(attempt: Attempt, response: Any) -> None:
    """Read what the provider reported for the call (``reported_usage`` hook) into
    ``attempt.billed``; a plugin whose hook raises is logged and ignored."""
    try:
        usage = attempt.gateway.host.call(
            attempt.provider, "reported_usage", config=attempt.config, response=response
        )
    except Exception:
        log.exception("The reported_usage hook of %s raised; the estimate stands", attempt.provider)
        usage = None
    attempt.billed = billed_cost(attempt.estimate, usage)


def _started(attempt: Attempt, error: BaseException | None, unknown: bool) -> bool:
    if attempt.job is None:
        return unknown
    return attempt.state in STARTED_STATES or isinstance(error, ResultNotCollectedError)


def attempt_cost(attempt: Attempt, status: str, error: BaseException | None, unknown: bool) -> Cost | None:
    """The cost an ending attempt carries (None when no price is known); ``unknown``: its submit
    may have created a job whose id was lost."""
    if status == "success":
        return attempt.billed or attempt.estimate
    if attempt.estimate is None and attempt.job is not None and attempt.state is None:
        # A job handle's or resume()'s attempt: it did not price the job or see how far it got,
        # so the cost recorded with the intent stands (a job cancelled while processing is billed).
        return None
    started = _started(attempt, error, unknown)
    if attempt.estimate is None:
        return None if started else _nothing(attempt)
    return attempt.estimate if started else attempt.estimate.nothing()


def _nothing(attempt: Attempt) -> Cost:
    """Zero for an attempt refused before it was priced: no video or image, nothing paid."""
    return Cost(
        amount=0,
        unit="video" if attempt.modality == "video" else "image",
        quantity=0,
        unit_price=0,
        source="estimate",
    )
