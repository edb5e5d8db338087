"""fal's Platform API price and billing routes, for :class:`~tarash_fal.testing.FakeFalServer`.

As documented at https://fal.ai/docs/platform-apis/v1/models/pricing and
https://fal.ai/docs/platform-apis/v1/models/billing-events:

* ``GET /v1/models/pricing?endpoint_id=ID`` (1 to 50 ``endpoint_id``; ``Authorization: Key``)
  answers ``{"prices": [{"endpoint_id", "unit_price", "unit", "currency"}], "next_cursor",
  "has_more"}``: the account's price per unit of each endpoint set with
  :meth:`_Billing.set_price` (endpoints without one are left out).
* ``GET /v1/models/billing-events?request_id=ID`` (1 to 50 ``request_id``; an **admin** key)
  answers ``{"billing_events": [{"request_id", "endpoint_id", "timestamp", "output_units",
  "unit_price", "percent_discount", "cost_estimate_nano_usd"}], "next_cursor", "has_more"}``
  for the events recorded with :meth:`_Billing.bill`.

Errors are fal's ``{"error": {"type", "message"}}`` (``authorization_error`` 401,
``validation_error`` 422).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._fake_platform import Answer

__all__ = ["BILLING_EVENTS_PATH", "BILLING_KINDS", "PRICING_PATH"]

PRICING_PATH = "/v1/models/pricing"
BILLING_EVENTS_PATH = "/v1/models/billing-events"
BILLING_KINDS = ("pricing", "billing_events")
_MAX_IDS = 50


def _answer(status: int, body: Any) -> Answer:
    from ._fake_platform import Answer  # that module builds on this one

    return Answer(status, body)


def _error(status: int, kind: str, message: str) -> Answer:
    return _answer(status, {"error": {"type": kind, "message": message}})


class _Billing:
    """Prices and billing events of the fake fal account."""

    api_key: str
    _lock: threading.Lock

    def _init_billing(self, admin_key: str) -> None:
        self.admin_key = admin_key
        self._prices: dict[str, dict[str, Any]] = {}
        self._billing_events: list[dict[str, Any]] = []
        self._billing_counts = dict.fromkeys(BILLING_KINDS, 0)

    @property
    def billing_counts(self) -> dict[str, int]:
        """Requests received per price/billing route (``pricing``, ``billing_events``): a copy."""
        with self._lock:
            return dict(self._billing_counts)

    def set_price(self, endpoint_id: str, unit_price: str, unit: str, currency: str = "USD") -> None:
        """Answer ``unit_price`` (a decimal string, sent as a JSON number) per ``unit`` for
        ``endpoint_id`` at the pricing route."""
        with self._lock:
            self._prices[endpoint_id] = {
                "endpoint_id": endpoint_id,
                "unit_price": float(Decimal(unit_price)),
                "unit": unit,
                "currency": currency,
            }

    def bill(
        self,
        request_id: str,
        endpoint_id: str,
        *,
        output_units: float,
        unit_price: str,
        percent_discount: float = 0,
    ) -> int:
        """Record a billing event for ``request_id``; returns its ``cost_estimate_nano_usd``."""
        nano = int(Decimal(str(output_units)) * Decimal(unit_price) * Decimal(100 - percent_discount) * 10**7)
        with self._lock:
            self._billing_events.append(
                {
                    "request_id": request_id,
                    "endpoint_id": endpoint_id,
                    "timestamp": datetime.now(timezone.utc).isoformat(),
                    "output_units": output_units,
                    "unit_price": float(Decimal(unit_price)),
                    "percent_discount": percent_discount,
                    "cost_estimate_nano_usd": nano,
                }
            )
        return nano

    def _billing_route(
        self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str]
    ) -> Answer:
        kind = "pricing" if path == PRICING_PATH else "billing_events"
        with self._lock:
            self._billing_counts[kind] += 1
        if method != "GET":
            return _error(405, "validation_error", "Method Not Allowed")
        accepted = {self.admin_key} if kind == "billing_events" else {self.admin_key, self.api_key}
        if headers.get("authorization", "") not in {f"Key {key}" for key in accepted}:
            needed = "An admin key is required" if kind == "billing_events" else "Authentication is required"
            return _error(401, "authorization_error", needed)
        name = "endpoint_id" if kind == "pricing" else "request_id"
        ids = query.get(name, [])
        if not 1 <= len(ids) <= _MAX_IDS:
            return _error(422, "validation_error", f"{name}: give 1 to {_MAX_IDS} values")
        with self._lock:
            if kind == "pricing":
                found = [dict(self._prices[i]) for i in ids if i in self._prices]
                return _answer(200, {"prices": found, "next_cursor": None, "has_more": False})
            events = [dict(e) for e in self._billing_events if e["request_id"] in ids]
        return _answer(200, {"billing_events": events, "next_cursor": None, "has_more": False})
