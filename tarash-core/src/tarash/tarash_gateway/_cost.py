"""The cost records: what an attempt cost (:class:`Cost`), what a unit costs (:class:`UnitPrice`)
and how a model family is billed (:class:`PricingRule`, declared by plugins).

Records only (attrs and ``decimal``): :mod:`.models` imports :class:`Cost` for
``AttemptMetadata.cost``; the price sources and the arithmetic live in :mod:`._pricing`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import attrs

from .exceptions import ValidationError

__all__ = [
    "COST_KINDS",
    "COST_SOURCES",
    "COST_UNITS",
    "Cost",
    "CostKind",
    "CostSource",
    "CostUnit",
    "PricingRule",
    "ReportedUsage",
    "UnitPrice",
    "to_decimal",
    "total",
]

#: What a price is counted in.
CostUnit = Literal["second", "image", "megapixel", "video", "token"]
#: Where the price (or the amount) came from, best first.
CostSource = Literal["provider-reported", "user-override", "provider-price-api", "bundled-table", "estimate"]
#: ``estimate``: computed by Tarash from a price; ``billed``: what the provider says it charged.
CostKind = Literal["estimate", "billed"]

COST_UNITS: tuple[str, ...] = ("second", "image", "megapixel", "video", "token")
COST_SOURCES: tuple[str, ...] = (
    "provider-reported",
    "user-override",
    "provider-price-api",
    "bundled-table",
    "estimate",
)
COST_KINDS: tuple[str, ...] = ("estimate", "billed")


def to_decimal(value: Any, field: str = "amount") -> Decimal:
    """``value`` (a Decimal, an int or a decimal string; never a float, which is not exact) as a
    finite, non-negative Decimal, or ValidationError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise ValidationError(
            f"{field} must be a Decimal, an int or a decimal string (not {type(value).__name__}: "
            "floats are not exact)",
            field=field,
            value=value,
        )
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValidationError(
            f"{field} is not a decimal number: {value!r}", field=field, value=value
        ) from None
    if not number.is_finite() or number < 0:
        raise ValidationError(
            f"{field} must be finite and not negative, got {value!r}", field=field, value=value
        )
    return number


def _amount(value: Any) -> Decimal:
    return to_decimal(value, "amount")


def _quantity(value: Any) -> Decimal:
    return to_decimal(value, "quantity")


def _unit_price(value: Any) -> Decimal:
    return to_decimal(value, "unit_price")


def _optional_price(value: Any) -> Decimal | None:
    return None if value is None else to_decimal(value, "price")


def _optional_quantity(value: Any) -> Decimal | None:
    return None if value is None else to_decimal(value, "quantity")


def _optional_amount(value: Any) -> Decimal | None:
    return None if value is None else to_decimal(value, "amount")


def _variants(value: Any) -> dict[str, Decimal]:
    return {str(k): to_decimal(v, f"variants.{k}") for k, v in dict(value).items()}


def _one_of(options: tuple[str, ...]) -> Any:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in options:
            raise ValidationError(
                f"{attribute.name} must be one of {', '.join(options)}; got {value!r}",
                field=attribute.name,
                value=value,
            )

    return check


def _currency(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not (isinstance(value, str) and len(value) == 3 and value.isalpha() and value.isupper()):
        raise ValidationError(
            f"currency must be an ISO 4217 code such as 'USD', got {value!r}", field="currency", value=value
        )


@attrs.frozen(kw_only=True)
class Cost:
    """What one attempt cost (or is expected to cost): ``amount = quantity x unit_price``.

    Attributes:
        amount: the money, exact (``Decimal``; serialised as a string).
        currency: ISO 4217 code (``"USD"``).
        unit: what the price counts: ``second``, ``image``, ``megapixel``, ``video`` or ``token``.
        quantity: how many units (``0`` for an attempt refused before submit).
        unit_price: the price of one unit.
        source: where the price came from: ``provider-reported`` (the provider's answer for this
            call), ``user-override``, ``provider-price-api``, ``bundled-table`` or ``estimate``.
        kind: ``estimate`` (computed by Tarash) or ``billed`` (the provider's figure).
        variant: the price variant used (a resolution tier such as ``"1080p"``), if any.
    """

    amount: Decimal = attrs.field(converter=_amount)
    currency: str = attrs.field(default="USD", validator=_currency)
    unit: CostUnit = attrs.field(validator=_one_of(COST_UNITS))
    quantity: Decimal = attrs.field(converter=_quantity)
    unit_price: Decimal = attrs.field(converter=_unit_price)
    source: CostSource = attrs.field(validator=_one_of(COST_SOURCES))
    kind: CostKind = attrs.field(default="estimate", validator=_one_of(COST_KINDS))
    variant: str | None = None

    @property
    def is_estimate(self) -> bool:
        return self.kind == "estimate"

    def nothing(self) -> Cost:
        """The same price for zero units: what an attempt refused before submit costs."""
        return attrs.evolve(self, amount=Decimal(0), quantity=Decimal(0))

    def __str__(self) -> str:
        variant = f" {self.variant}" if self.variant else ""
        return (
            f"{self.amount} {self.currency} ({self.quantity} {self.unit}{variant} x {self.unit_price}, "
            f"{self.source}{'' if self.is_estimate else ', billed'})"
        )


@attrs.frozen(kw_only=True)
class UnitPrice:
    """The price of one unit of a model, with its variants and where it comes from.

    Attributes:
        unit: what is counted (see :class:`Cost`).
        price: the default price per unit (``None``: no sourced price).
        variants: variant (a resolution such as ``"1080p"``, a quality) -> price per unit.
        currency: ISO 4217 code.
        source: ``user-override``, ``provider-price-api`` or ``bundled-table``.
        reference: where the figure was read (a URL, a file), for audits.
        as_of: the date the figure was read (``YYYY-MM-DD``).
    """

    unit: CostUnit = attrs.field(validator=_one_of(COST_UNITS))
    price: Decimal | None = attrs.field(default=None, converter=_optional_price)
    variants: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_variants)
    currency: str = attrs.field(default="USD", validator=_currency)
    source: CostSource = attrs.field(default="bundled-table", validator=_one_of(COST_SOURCES))
    reference: str = ""
    as_of: str = ""

    def for_variant(self, variant: str | None) -> tuple[Decimal, str | None] | None:
        """The price of one unit for ``variant`` (its own price, else the default), or None."""
        if variant is not None and variant in self.variants:
            return self.variants[variant], variant
        return None if self.price is None else (self.price, None)


@attrs.frozen(kw_only=True)
class PricingRule:
    """How a provider bills a model family: what the quantity is. Returned by a plugin's
    :func:`~tarash.tarash_gateway.hookspecs.pricing_rules` hook.

    Core computes the quantity from the request, before submit:

    * ``second``: ``duration_seconds`` (else ``default_seconds``) x ``number_of_videos``;
    * ``video``: ``number_of_videos``; ``image``: ``n``;
    * ``megapixel``: per image, ``width x height / 1e6`` rounded up to a whole megapixel, x ``n``;
      the size is ``request.size`` (``"1024x768"``), else ``sizes[request.aspect_ratio]``, else
      ``default_size``;
    * ``token``: only what the provider reports for the call (no estimate before submit).

    Attributes:
        prefix: the model-id prefix, matched on path segments (the longest wins); ``""``
            matches every model of the modality.
        modality: ``"video"`` or ``"image"``.
        unit: see above.
        variant_field: the request field that picks a price variant (``"resolution"``,
            ``"quality"``), and ``default_variant`` when the request leaves it unset.
        default_seconds: the duration the provider uses when the request sets none.
        sizes: aspect ratio -> ``"WIDTHxHEIGHT"`` the provider renders (megapixel pricing).
        default_size: the size when the request gives neither size nor a known aspect ratio.
    """

    prefix: str
    modality: Literal["video", "image"]
    unit: CostUnit = attrs.field(validator=_one_of(COST_UNITS))
    variant_field: str | None = None
    default_variant: str | None = None
    default_seconds: int | None = None
    sizes: Mapping[str, str] = attrs.field(factory=dict)
    default_size: str | None = None

    @classmethod
    def per_family(
        cls,
        families: Sequence[Any],
        *,
        variant_field: str | None = None,
        default_seconds: int | None = None,
    ) -> tuple[PricingRule, ...]:
        """One rule per model family (``ProviderSpec.models``): video billed per second
        (``default_seconds`` when the request sets no duration), images each; ``variant_field``
        picks the price variant of the families whose ``allowed`` values name it.

        The same ``families`` object with the same arguments gives the same tuple, so core keeps
        its per-model match between calls (see ``hookspecs.pricing_rules``)."""
        key = (id(families), variant_field, default_seconds)
        made = _PER_FAMILY.get(key)
        if made is not None and made[0] is families:
            return made[1]
        rules = tuple(
            cls(
                prefix=family.prefix,
                modality=family.modality,
                unit="second" if family.modality == "video" else "image",
                variant_field=variant_field if variant_field in family.allowed else None,
                default_seconds=default_seconds if family.modality == "video" else None,
            )
            for family in families
        )
        if len(_PER_FAMILY) >= _PER_FAMILY_MAX:
            _PER_FAMILY.clear()
        _PER_FAMILY[key] = (families, rules)
        return rules


#: What :meth:`PricingRule.per_family` made, by (id of the families, arguments); the families are
#: kept so that a reused id is told apart. Cleared when it reaches :data:`_PER_FAMILY_MAX` entries.
_PER_FAMILY: dict[tuple[int, str | None, int | None], tuple[Sequence[Any], tuple[PricingRule, ...]]] = {}
_PER_FAMILY_MAX = 64


@attrs.frozen(kw_only=True)
class ReportedUsage:
    """What the provider reported it billed for one call (its answer's usage block), returned by
    a plugin's :func:`~tarash.tarash_gateway.hookspecs.reported_usage` hook.

    Attributes:
        unit: what ``quantity`` counts (``"token"`` for OpenAI's ``usage.output_tokens``).
        quantity: the units the provider counted, if it says.
        amount: the money the provider says it charged, if it says (xAI's
            ``cost_in_usd_ticks``); then it is the cost, as billed.
        currency: ISO 4217 code of ``amount``.
    """

    unit: CostUnit = attrs.field(validator=_one_of(COST_UNITS))
    quantity: Decimal | None = attrs.field(default=None, converter=_optional_quantity)
    amount: Decimal | None = attrs.field(default=None, converter=_optional_amount)
    currency: str = attrs.field(default="USD", validator=_currency)


def total(costs: Sequence[Cost | None]) -> Cost | None:
    """The sum of ``costs`` (one currency; None when there is none), as one record: unit, unit
    price and source of the last; ``billed`` only when every part is."""
    known = [c for c in costs if c is not None]
    if not known:
        return None
    currencies = {c.currency for c in known}
    if len(currencies) > 1:
        raise ValidationError(f"costs in several currencies cannot be summed: {sorted(currencies)}")
    last = known[-1]
    return attrs.evolve(
        last,
        amount=sum((c.amount for c in known), Decimal(0)),
        quantity=sum((c.quantity for c in known if c.unit == last.unit), Decimal(0)),
        kind="billed" if all(c.kind == "billed" for c in known) else "estimate",
    )
