"""What a GPT Image call cost, from the ``usage`` block of the Images API answer.

OpenAI bills the gpt-image models per token, at three rates: text input tokens, image input tokens
(edits), image output tokens and text output tokens. The answer's ``usage`` counts them
(``input_tokens_details`` and ``output_tokens_details``: ``text_tokens``/``image_tokens``; an
answer without output details has image output tokens only); the cost of the call is
each count at its published rate per token. A model without a sourced rate here, or an answer
without ``usage``, reports nothing: core keeps the per-image estimate from the price table.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from tarash.tarash_gateway.plugin import ReportedUsage

__all__ = ["TOKEN_RATES", "TokenRates", "reported_usage"]

_PER_MILLION = Decimal(1_000_000)


@attrs.frozen(kw_only=True)
class TokenRates:
    """USD per token for each kind of token a GPT Image call is billed, and where they were read."""

    text_input: Decimal
    image_input: Decimal
    image_output: Decimal
    text_output: Decimal
    source: str
    as_of: str


#: gpt-image-2's rates. OpenAI's own pricing page (https://openai.com/api/pricing/) is not in the
#: stored material; the figures are those two pages give (both say they follow OpenAI's pricing
#: page; text output only on the second), read 2026-12-01. The 2.5 and 2.6 models have no
#: published rate there: no entry.
_GPT_IMAGE_2 = TokenRates(
    text_input=Decimal(5) / _PER_MILLION,
    image_input=Decimal(8) / _PER_MILLION,
    image_output=Decimal(30) / _PER_MILLION,
    text_output=Decimal(10) / _PER_MILLION,
    source="https://xairouter.com/en/models/gpt-image-2/ and "
    "https://robotsatlas.com/ai-models/chatgpt-images-2-0 (text input $5, image input $8, "
    "image output $30, text output $10 per 1M tokens; source: openai.com/api/pricing/)",
    as_of="2026-12-01",
)
#: (provider, model id) -> its rates. Azure OpenAI's rates for these models are not in the stored
#: material: its calls report nothing, rather than OpenAI's rates passed off as Azure's.
TOKEN_RATES: dict[tuple[str, str], TokenRates] = {
    ("openai", "gpt-image-2"): _GPT_IMAGE_2,
    ("openai", "gpt-image-2-2026-04-21"): _GPT_IMAGE_2,
}


def _count(block: Any, key: str) -> int | None:
    value = block.get(key) if isinstance(block, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def reported_usage(provider: str, model: str, raw_response: Any) -> ReportedUsage | None:
    """The cost of one call of ``model`` from its answer (``raw_response``, the JSON without the
    images): ``ReportedUsage(unit="token", quantity=total tokens, amount=USD)``, or None when the
    provider's model has no sourced rates or the answer has no complete ``usage`` block."""
    rates = TOKEN_RATES.get((provider, model))
    usage = raw_response.get("usage") if isinstance(raw_response, Mapping) else None
    if rates is None or not isinstance(usage, Mapping):
        return None
    details = usage.get("input_tokens_details")
    text_in, image_in = _count(details, "text_tokens"), _count(details, "image_tokens")
    output = _count(usage, "output_tokens")
    if text_in is None or image_in is None or output is None:
        return None
    out_details = usage.get("output_tokens_details")
    text_out = _count(out_details, "text_tokens") or 0
    image_out = _count(out_details, "image_tokens")
    image_out = output - text_out if image_out is None else image_out
    amount = (
        text_in * rates.text_input
        + image_in * rates.image_input
        + image_out * rates.image_output
        + text_out * rates.text_output
    )
    return ReportedUsage(unit="token", quantity=text_in + image_in + image_out + text_out, amount=amount)
