"""How fal bills its models (pricing rules) and fal's price API, for tarash-core's cost tracking.

* Video is billed per second of output; where a model takes a resolution, the price depends on
  it (the price table holds a variant per resolution), and ``default_seconds`` is the duration
  fal renders when the request sets none.
* FLUX-family images are billed per megapixel of output, rounded up per image (fal's model
  pages: "billed per megapixel, rounded up"); the size is the request's, else the preset its
  aspect ratio maps to, else fal's default ``landscape_4_3`` (1024x768 = 1 MP). Other image
  models are billed per image.
* Any other endpoint: video per second (by resolution), images each.
* ``GET https://api.fal.ai/v1/models/pricing?endpoint_id=<model>`` (with the key) answers
  ``{"prices": [{"endpoint_id", "unit_price", "unit", "currency"}], ...}``: the account's price
  (custom prices and discounts included). With ``config.base_url`` set (a proxy, the fake
  server) the path is sent to that root instead.
* ``GET https://api.fal.ai/v1/models/billing-events?request_id=...`` (an admin key) answers what
  was billed per request, ``cost_estimate_nano_usd`` (``tarash costs reconcile``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from tarash.tarash_gateway.plugin import CallContext, Flow, PricingRule, ReportedUsage, Request, UnitPrice

__all__ = [
    "BILLING_EVENTS_PATH",
    "BILLING_EVENTS_URL",
    "PRICING_PATH",
    "PRICING_URL",
    "QUEUE_URL",
    "billed_costs_flow",
    "pricing_rules",
    "unit_prices_flow",
]

QUEUE_URL = "https://queue.fal.run"
PRICING_URL = "https://api.fal.ai/v1/models/pricing"
PRICING_PATH = "/v1/models/pricing"
BILLING_EVENTS_URL = "https://api.fal.ai/v1/models/billing-events"
BILLING_EVENTS_PATH = "/v1/models/billing-events"

#: fal's image_size presets in pixels (fal's FLUX schema).
PRESET_SIZES: Mapping[str, str] = {
    "square_hd": "1024x1024",
    "square": "512x512",
    "portrait_4_3": "768x1024",
    "portrait_16_9": "576x1024",
    "landscape_4_3": "1024x768",
    "landscape_16_9": "1024x576",
}
_RATIO_SIZES = {
    "1:1": "1024x1024",
    "4:3": "1024x768",
    "3:4": "768x1024",
    "16:9": "1024x576",
    "9:16": "576x1024",
}
#: Image families billed per megapixel; every other image family is billed per image.
MEGAPIXEL_FAMILIES = (
    "fal-ai/flux",
    "fal-ai/flux-lora",
    "fal-ai/flux-pro",
    "fal-ai/flux-2",
    "fal-ai/z-image/turbo",
)
#: Seconds fal renders when the request sets no duration (the model's schema default).
DEFAULT_SECONDS: Mapping[str, int] = {
    "fal-ai/veo3.1": 8,
    "fal-ai/veo3": 8,
    "fal-ai/kling-video": 5,
    "fal-ai/minimax": 6,
    "fal-ai/sora-2": 4,
    "fal-ai/wan-25-preview": 5,
    "wan/v2.6": 5,
    "fal-ai/bytedance/seedance": 5,
    "fal-ai/pixverse": 5,
}
_UNITS = {"second": "second", "image": "image", "megapixel": "megapixel", "mp": "megapixel", "video": "video"}


def _default_seconds(prefix: str) -> int | None:
    from tarash.tarash_gateway.field_mappers import match_model_prefix

    match = match_model_prefix(prefix, DEFAULT_SECONDS)
    return None if match is None else DEFAULT_SECONDS[match]


_MADE: tuple[tuple[Any, ...], tuple[PricingRule, ...]] | None = None


def pricing_rules() -> tuple[PricingRule, ...]:
    """One rule per family of the built-in table (and the user's saved models).

    The rules are made again only when the families changed (a model saved or removed since):
    the same families give the same tuple, which core keeps its per-model match for."""
    global _MADE
    from ._plugin import _families

    families = _families()
    made = _MADE
    if made is not None and made[0] == families:
        return made[1]
    rules = _rules(families)
    _MADE = (families, rules)
    return rules


def _rules(families: Sequence[Any]) -> tuple[PricingRule, ...]:
    rules = []
    for family in families:
        if family.modality == "video":
            allowed = dict(family.allowed)
            rules.append(
                PricingRule(
                    prefix=family.prefix,
                    modality="video",
                    unit="second",
                    variant_field="resolution" if "resolution" in allowed else None,
                    default_seconds=_default_seconds(family.prefix),
                )
            )
        elif family.prefix in MEGAPIXEL_FAMILIES or family.prefix.startswith("fal-ai/flux-2"):
            rules.append(
                PricingRule(
                    prefix=family.prefix,
                    modality="image",
                    unit="megapixel",
                    sizes={**PRESET_SIZES, **_RATIO_SIZES},
                    default_size=PRESET_SIZES["landscape_4_3"],
                )
            )
        else:
            rules.append(PricingRule(prefix=family.prefix, modality="image", unit="image"))
    # Any other endpoint (fal hosts hundreds): video per second, images each.
    rules.append(PricingRule(prefix="", modality="video", unit="second", variant_field="resolution"))
    rules.append(PricingRule(prefix="", modality="image", unit="image"))
    return tuple(rules)


def _unit(text: Any) -> str | None:
    word = str(text).strip().lower()
    return _UNITS.get(word) or _UNITS.get(word.removesuffix("s"))


def unit_prices_flow(config: Any, request: Any, context: CallContext) -> Flow[UnitPrice | None]:
    """fal's price for ``config.model`` from the pricing API (None when it lists none, or in a
    unit Tarash does not price), once ``request`` passed the checks its submit makes."""
    # lazy: the payload builder loads the model registry, which pricing rules alone do not need
    from ._provider import payload

    payload(config, request, context.modality)  # an impossible request raises: nothing is sent
    custom_root = context.base_url.rstrip("/") != QUEUE_URL
    answer = yield Request(
        method="GET", url=PRICING_PATH if custom_root else PRICING_URL, params={"endpoint_id": config.model}
    )
    try:
        body = answer.json()
    except ValueError:
        return None
    prices = body.get("prices") if isinstance(body, dict) else None
    for entry in prices if isinstance(prices, list) else ():
        if not isinstance(entry, dict) or entry.get("endpoint_id") != config.model:
            continue
        unit = _unit(entry.get("unit"))
        try:
            price = Decimal(str(entry.get("unit_price")))
        except InvalidOperation:
            return None
        if unit is None or not price.is_finite():
            return None
        return UnitPrice(
            unit=unit,  # type: ignore[arg-type]
            price=price,
            currency=str(entry.get("currency") or "USD"),
            source="provider-price-api",
            reference=PRICING_URL,
        )
    return None


def _unit_of(endpoint_id: Any) -> str:
    """The unit fal bills ``endpoint_id`` in, from its pricing rule (billing events do not say)."""
    from tarash.tarash_gateway.field_mappers import match_model_prefix

    rules = pricing_rules()
    modality_free = {rule.prefix: rule for rule in rules if rule.prefix}
    match = match_model_prefix(str(endpoint_id), modality_free)
    return modality_free[match].unit if match is not None else "second"


def billed_costs_flow(
    config: Any, job_ids: Sequence[str], context: CallContext
) -> Flow[dict[str, ReportedUsage]]:
    """What fal billed for ``job_ids`` from ``GET /v1/models/billing-events`` (an admin key; the
    last 90 days, fal's limit): ``{request id: ReportedUsage}``, events of one request summed."""
    custom_root = context.base_url.rstrip("/") != QUEUE_URL
    start = (datetime.now(timezone.utc) - timedelta(days=90)).isoformat()
    params: dict[str, Any] = {"request_id": list(job_ids), "start": start}
    found: dict[str, ReportedUsage] = {}
    while True:
        answer = yield Request(
            method="GET", url=BILLING_EVENTS_PATH if custom_root else BILLING_EVENTS_URL, params=params
        )
        body = answer.json()
        for event in body.get("billing_events") or ():
            request_id = event.get("request_id")
            nano = event.get("cost_estimate_nano_usd")
            if request_id not in job_ids or not isinstance(nano, int):
                continue
            amount = Decimal(nano) / Decimal(10**9)
            units = Decimal(str(event.get("output_units") or 0))
            before = found.get(request_id)
            if before is not None:
                amount += before.amount or 0
                units += before.quantity or 0
            found[request_id] = ReportedUsage(
                unit=_unit_of(event.get("endpoint_id")),  # type: ignore[arg-type]
                quantity=units,
                amount=amount,
            )
        if not body.get("has_more") or not body.get("next_cursor"):
            return found
        params = {**params, "cursor": body["next_cursor"]}
