"""What a generation costs: quantities from the plugin's pricing rule, prices from their sources.

The quantity comes from the :class:`~._cost.PricingRule` the provider's plugin declares for the
model family (:func:`~.hookspecs.pricing_rules`). The price of one unit comes from, best first:

1. what the provider reports for the call (:func:`~.hookspecs.reported_usage`, after it ends);
2. a user override (:meth:`Gateway.set_price`, then the file ``<data dir>/prices.json``): a
   correction has to win over what it corrects;
3. the provider's price API (:func:`~.hookspecs.unit_prices`, e.g. fal ``GET
   /v1/models/pricing``), sent through core's transport with the attempt's key and cached per
   gateway for :data:`PRICE_API_TTL` seconds (a failed lookup too, so a broken price API costs
   one request per TTL);
4. the bundled table ``data/prices.json`` (``scripts/make_price_table.py`` regenerates it).

A price API reports one price per endpoint: where the bundled table or an override has a
variant for the requested tier (a resolution), that variant wins.
"""

from __future__ import annotations

import json
import math
import threading
import time
import weakref
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._cost import Cost, PricingRule, ReportedUsage, UnitPrice
from ._ledger import data_dir
from ._redact import get_logger
from ._transport import fingerprint
from .exceptions import TarashException, ValidationError
from .field_mappers import match_model_prefix

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._engine import Attempt
    from ._gateway import Gateway
    from ._plugins import PluginHost

__all__ = [
    "PRICE_API_TTL",
    "TABLE_PATH",
    "PriceBook",
    "billed_cost",
    "book",
    "load_prices",
    "overrides_path",
    "parse_prices",
    "price_attempt",
    "quantity_of",
    "rule_for",
]

log = get_logger("tarash.costs")

#: Seconds a price API answer (or its failure) is reused.
PRICE_API_TTL = 3600.0
TABLE_PATH = Path(__file__).parent / "data" / "prices.json"
#: Prices are kept to this many decimal places (a nano-dollar).
_EXACT = Decimal("0.000000001")

PriceKey = tuple[str, str]  # (provider, model prefix)
#: Entries the per-model caches below keep before they start again.
_MATCHES_MAX = 1024


def overrides_path() -> Path:
    """The user's price file: ``<data dir>/prices.json`` (same format as the bundled table)."""
    return data_dir() / "prices.json"


def load_prices(path: Path, source: str) -> dict[PriceKey, UnitPrice]:
    """``{(provider, model prefix): UnitPrice}`` from a price file; ``{}`` when it does not exist.

    The file is ``{"version": 1, "prices": [{"provider", "model", "unit", "price", "variants",
    "currency", "source", "as_of"}, ...]}``; ``price`` is a decimal string or null (no sourced
    price), ``source`` the URL or document the figure was read from.
    """
    try:
        text = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return parse_prices(text, path, source)


def parse_prices(text: bytes, path: Path, source: str) -> dict[PriceKey, UnitPrice]:
    """The prices of a price file's ``text`` (read from ``path``, named in errors)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{path} is not a price file: {exc}", field="prices") from None
    entries = data.get("prices") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValidationError(f"{path} is not a price file (no 'prices' list)", field="prices")
    prices: dict[PriceKey, UnitPrice] = {}
    for number, entry in enumerate(entries):
        try:
            prices[(str(entry["provider"]), str(entry["model"]))] = UnitPrice(
                unit=entry["unit"],
                price=entry.get("price"),
                variants=entry.get("variants") or {},
                currency=entry.get("currency", "USD"),
                source=source,  # type: ignore[arg-type]
                reference=str(entry.get("source", "")),
                as_of=str(entry.get("as_of") or ""),
            )
        except (KeyError, TypeError, AttributeError, ValidationError) as exc:
            raise ValidationError(
                f"{path}: price entry {number} is invalid ({exc})", field=f"prices[{number}]"
            ) from None
    return prices


#: (the user's price file: its path and bytes, the prices read from them).
_USER: tuple[tuple[Path, bytes | None], dict[PriceKey, UnitPrice]] | None = None


def _user_prices() -> dict[PriceKey, UnitPrice]:
    """The user's price file (:func:`overrides_path`), parsed again only when its bytes changed:
    every generation's estimate asks (a file's times may not change when it is rewritten)."""
    global _USER
    path = overrides_path()
    seen: tuple[Path, bytes | None]
    try:
        seen = (path, path.read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        seen = (path, None)
    known = _USER
    if known is None or known[0] != seen:
        text = seen[1]
        known = _USER = (seen, {} if text is None else parse_prices(text, path, "user-override"))
    return known[1]


_TABLE: dict[PriceKey, UnitPrice] | None = None
_TABLE_LOCK = threading.Lock()


def _table() -> dict[PriceKey, UnitPrice]:
    global _TABLE
    if _TABLE is None:
        with _TABLE_LOCK:
            if _TABLE is None:
                _TABLE = load_prices(TABLE_PATH, "bundled-table")
    return _TABLE


_TABLE_HITS: dict[PriceKey, UnitPrice | None] = {}


def _table_price(provider: str, model: str) -> UnitPrice | None:
    """The bundled table's price for ``model`` (the table never changes: kept per model, at
    most :data:`_MATCHES_MAX` of them)."""
    key = (provider, model)
    if key not in _TABLE_HITS:
        if len(_TABLE_HITS) >= _MATCHES_MAX:
            _TABLE_HITS.clear()
        _TABLE_HITS[key] = _lookup(_table(), provider, model)
    return _TABLE_HITS[key]


def _lookup(prices: Mapping[PriceKey, UnitPrice], provider: str, model: str) -> UnitPrice | None:
    prefix = match_model_prefix(model, [m for p, m in prices if p == provider])
    return None if prefix is None else prices[(provider, prefix)]


@attrs.define
class PriceBook:
    """One gateway's price state: its overrides and its price API cache."""

    overrides: dict[PriceKey, UnitPrice] = attrs.field(factory=dict)
    cache: dict[tuple[Any, ...], tuple[float, UnitPrice | None]] = attrs.field(factory=dict)
    ttl: float = PRICE_API_TTL
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def set_price(self, provider: str, model: str, price: UnitPrice) -> None:
        self.overrides[(provider, model)] = attrs.evolve(price, source="user-override")

    def override(self, provider: str, model: str) -> UnitPrice | None:
        found = _lookup(self.overrides, provider, model)
        if found is None:
            found = _lookup(_user_prices(), provider, model)
        return found

    def cached(self, key: tuple[Any, ...]) -> tuple[bool, UnitPrice | None]:
        with self.lock:
            hit = self.cache.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def remember(self, key: tuple[Any, ...], price: UnitPrice | None) -> None:
        with self.lock:
            self.cache[key] = (time.monotonic() + self.ttl, price)


_BOOKS: weakref.WeakKeyDictionary[Gateway, PriceBook] = weakref.WeakKeyDictionary()
_BOOKS_LOCK = threading.Lock()


def book(gateway: Gateway) -> PriceBook:
    """The gateway's :class:`PriceBook` (made at first use)."""
    with _BOOKS_LOCK:
        found = _BOOKS.get(gateway)
        if found is None:
            found = _BOOKS[gateway] = PriceBook()
        return found


#: ``{(provider, model, modality): (the plugin's rules, the rule matched in them)}``, for rules
#: a plugin returns as a tuple: the same tuple again (``is``) gives the same match. Cleared when
#: it reaches :data:`_MATCHES_MAX` entries.
_MATCHES: dict[tuple[str, str, str], tuple[tuple[Any, ...], PricingRule | None]] = {}


def rule_for(host: PluginHost, provider: str, model: str, modality: str) -> PricingRule | None:
    """The provider plugin's pricing rule for ``model`` (the longest matching prefix; ``""``
    matches every model), or None. A plugin whose hook raises is logged and has none."""
    try:
        rules = host.call(provider, "pricing_rules", provider=provider) or ()
    except Exception:
        log.exception("The pricing_rules hook of %s raised; its costs are unknown", provider)
        return None
    key = (provider, model, modality)
    known = _MATCHES.get(key)
    if known is not None and known[0] is rules:
        return known[1]
    rule = _match(rules, provider, model, modality)
    if isinstance(rules, tuple):
        if len(_MATCHES) >= _MATCHES_MAX:
            _MATCHES.clear()
        _MATCHES[key] = (rules, rule)
    return rule


def _match(rules: Any, provider: str, model: str, modality: str) -> PricingRule | None:
    try:
        candidates = [r for r in rules if isinstance(r, PricingRule) and r.modality == modality]
    except Exception:
        log.exception("The pricing_rules hook of %s raised; its costs are unknown", provider)
        return None
    prefix = match_model_prefix(model, [r.prefix for r in candidates if r.prefix])
    for rule in candidates:
        if rule.prefix == (prefix or ""):
            return rule
    return None


def _size(text: str | None) -> tuple[int, int] | None:
    if not text or "x" not in text:
        return None
    width, _, height = text.lower().partition("x")
    return (int(width), int(height)) if width.isdigit() and height.isdigit() else None


def quantity_of(rule: PricingRule, request: Any) -> tuple[Decimal, str | None] | None:
    """``(quantity, variant)`` of ``request`` under ``rule``, or None when it cannot be known
    before the call (a duration the request leaves to the provider, token pricing)."""
    variant = getattr(request, rule.variant_field, None) if rule.variant_field else None
    variant = str(variant) if variant is not None else rule.default_variant
    count = int(getattr(request, "number_of_videos", None) or getattr(request, "n", None) or 1)
    if rule.unit == "second":
        seconds = getattr(request, "duration_seconds", None) or rule.default_seconds
        return None if seconds is None else (Decimal(int(seconds) * count), variant)
    if rule.unit in ("video", "image"):
        return Decimal(count), variant
    if rule.unit == "megapixel":
        size = (
            _size(getattr(request, "size", None))
            or _size(rule.sizes.get(str(getattr(request, "aspect_ratio", None))))
            or _size(rule.default_size)
        )
        if size is None:
            return None
        megapixels = math.ceil(size[0] * size[1] / 1_000_000)
        return Decimal(megapixels * count), variant
    return None


def _unit_price_from_api(attempt: Attempt, run_flow: Callable[..., Any]) -> Any:
    """The provider's price API answer for the attempt's model (cached), or None; ``run_flow``
    is the engine's, which sends the hook's requests with the attempt's key and deadline."""
    if not attempt.gateway.host.implements(attempt.provider, "unit_prices"):
        return None
    if attempt.api_key is None and attempt.spec.api_key_env:
        return None  # an estimate without a key (a dry run): the price API needs one
    prices = book(attempt.gateway)
    mock_price = getattr(attempt.config.mock, "price", None)  # the mock's "price API" answers it
    key = (attempt.provider, attempt.base_url, fingerprint(attempt.api_key), attempt.model, mock_price)
    hit, price = prices.cached(key)
    if hit:
        return price
    try:
        price = yield from run_flow(
            attempt,
            "unit_prices",
            "validate",
            config=attempt.config,
            request=attempt.request,
            context=attempt.context(),
        )
    except ValidationError:
        raise  # the plugin found the request impossible: refused, nothing sent
    except TarashException as exc:
        log.info("The price API of %s failed (%s); using other price sources", attempt.provider, exc)
        price = None
    if price is not None and not isinstance(price, UnitPrice):
        log.warning("The unit_prices hook of %s returned %s; ignored", attempt.provider, type(price).__name__)
        price = None
    prices.remember(key, price)
    return price


def _merge(primary: UnitPrice, variants_from: UnitPrice | None) -> UnitPrice:
    """``primary`` with the tier variants of ``variants_from`` it lacks (same unit and currency)."""
    if (
        variants_from is None
        or variants_from.unit != primary.unit
        or variants_from.currency != primary.currency
    ):
        return primary
    return attrs.evolve(primary, variants={**variants_from.variants, **primary.variants})


def price_attempt(attempt: Attempt, run_flow: Callable[..., Any]) -> Any:
    """Flow: the attempt's expected :class:`Cost` (None when the rule, quantity or price is not
    known). Sends at most one request (the price API, once per TTL) and only after the request
    was checked."""
    rule = rule_for(attempt.gateway.host, attempt.provider, attempt.model, attempt.modality)
    if rule is None:
        return None
    counted = quantity_of(rule, attempt.request)
    if counted is None:
        return None
    quantity, variant = counted
    table = _table_price(attempt.provider, attempt.model)
    price = book(attempt.gateway).override(attempt.provider, attempt.model)
    if price is None:
        api = yield from _unit_price_from_api(attempt, run_flow)
        price = _merge(api, table) if api is not None and api.unit == rule.unit else None
    price = price or table
    if price is None or price.unit != rule.unit:
        return None
    found = price.for_variant(variant)
    if found is None:
        return None
    unit_price, used = found
    return Cost(
        amount=quantity * unit_price,
        currency=price.currency,
        unit=rule.unit,
        quantity=quantity,
        unit_price=unit_price,
        source=price.source,
        variant=used,
    )


def billed_cost(estimate: Cost | None, usage: Any) -> Cost | None:
    """The cost of a finished call from what the provider reported (a
    :class:`~._cost.ReportedUsage`): its amount as billed, or its quantity at the estimate's
    price; the estimate when it reported nothing usable."""
    if not isinstance(usage, ReportedUsage):
        return estimate
    if usage.amount is not None:
        quantity = usage.quantity if usage.quantity else Decimal(1)
        return Cost(
            amount=usage.amount,
            currency=usage.currency,
            unit=usage.unit,
            quantity=quantity,
            unit_price=(usage.amount / quantity).quantize(_EXACT),
            source="provider-reported",
            kind="billed",
            variant=estimate.variant if estimate else None,
        )
    if estimate is None or estimate.unit != usage.unit or usage.quantity is None:
        return estimate
    return attrs.evolve(
        estimate,
        quantity=usage.quantity,
        amount=usage.quantity * estimate.unit_price,
        source="provider-reported",
    )
