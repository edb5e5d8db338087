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
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tarash.tarash_gateway.plugin import CallContext, Flow, PricingRule, Request, UnitPrice

__all__ = ["PRICING_PATH", "PRICING_URL", "QUEUE_URL", "pricing_rules", "unit_prices_flow"]

QUEUE_URL = "https://queue.fal.run"
PRICING_URL = "https://api.fal.ai/v1/models/pricing"
PRICING_PATH = "/v1/models/pricing"

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


def pricing_rules() -> list[PricingRule]:
    """One rule per family of the built-in table (and the user's saved models)."""
    from ._plugin import _families

    rules = []
    for family in _families():
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
    return rules


def _unit(text: Any) -> str | None:
    word = str(text).strip().lower()
    return _UNITS.get(word) or _UNITS.get(word.removesuffix("s"))


def unit_prices_flow(config: Any, context: CallContext) -> Flow[UnitPrice | None]:
    """fal's price for ``config.model`` from the pricing API (None when it lists none, or in a
    unit Tarash does not price)."""
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
