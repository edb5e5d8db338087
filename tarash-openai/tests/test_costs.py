"""What a GPT Image call costs: its answer's ``usage`` at the per-token rates, else the table."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from tarash.tarash_gateway import generate_image
from tarash.tarash_gateway.costs import Cost
from tarash.tarash_gateway.models import ImageGenerationRequest, MediaContent
from tarash_openai._usage import reported_usage
from tarash_openai.testing import FakeOpenAIServer, png

#: The fake counts one token per prompt word, 85 per input image, 272 per output image.
TEXT, IMAGE_IN, IMAGE_OUT = Decimal("0.000005"), Decimal("0.000008"), Decimal("0.00003")


def edit_request() -> ImageGenerationRequest:
    return ImageGenerationRequest(
        prompt="make it blue",
        image_list=[
            {"image": MediaContent(content=png(1), content_type="image/png"), "type": "reference"},
            {"image": MediaContent(content=png(2), content_type="image/png"), "type": "reference"},
        ],
    )


@pytest.fixture
def no_usage() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(usage=False) as server:
        yield server


def test_a_generation_costs_its_text_and_image_output_tokens(fake_openai: FakeOpenAIServer) -> None:
    response = generate_image(
        fake_openai.config("gpt-image-2"), ImageGenerationRequest(prompt="a red fox", n=2, quality="high")
    )
    amount = 3 * TEXT + 544 * IMAGE_OUT
    assert amount == Decimal("0.016335")
    assert response.execution_metadata.total_cost == Cost(  # type: ignore[union-attr]
        amount=amount,
        unit="token",
        quantity=547,
        unit_price=(amount / 547).quantize(Decimal("0.000000001")),
        source="provider-reported",
        kind="billed",
        variant="high",
    )
    assert fake_openai.counts["generations"] == 1


def test_an_edit_costs_its_input_image_tokens_too(fake_openai: FakeOpenAIServer) -> None:
    response = generate_image(fake_openai.config("gpt-image-2-2026-04-21"), edit_request())
    cost = response.execution_metadata.total_cost  # type: ignore[union-attr]
    assert cost is not None
    assert (cost.amount, cost.quantity, cost.unit, cost.source, cost.kind) == (
        Decimal("0.009535"),  # 3 x 0.000005 + 170 x 0.000008 + 272 x 0.00003
        Decimal(445),
        "token",
        "provider-reported",
        "billed",
    )
    assert fake_openai.counts["edits"] == 1


def test_azure_follows_the_same_rule_but_has_no_sourced_rates(fake_openai: FakeOpenAIServer) -> None:
    response = generate_image(fake_openai.azure_config("gpt-image-2"), edit_request())
    assert response.execution_metadata.total_cost is None  # type: ignore[union-attr]
    assert response.raw_response["usage"]["output_tokens"] == 272  # type: ignore[index]
    assert reported_usage("azure-openai", "gpt-image-2", response.raw_response) is None
    assert fake_openai.counts["edits"] == 1


def test_without_usage_the_per_image_table_price_of_the_quality_stands(no_usage: FakeOpenAIServer) -> None:
    response = generate_image(
        no_usage.config("gpt-image-2"), ImageGenerationRequest(prompt="a red fox", n=3, quality="medium")
    )
    assert response.execution_metadata.total_cost == Cost(  # type: ignore[union-attr]
        amount=Decimal("0.159"),
        unit="image",
        quantity=3,
        unit_price=Decimal("0.053"),
        source="bundled-table",
        variant="medium",
    )
    assert "usage" not in response.raw_response  # type: ignore[operator]


def test_a_model_without_sourced_token_rates_reports_nothing(fake_openai: FakeOpenAIServer) -> None:
    response = generate_image(
        fake_openai.config("gpt-image-2.5-flare"), ImageGenerationRequest(prompt="a fox")
    )
    assert response.execution_metadata.total_cost is None  # type: ignore[union-attr]
    assert reported_usage("openai", "gpt-image-2.5-flare", response.raw_response) is None


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, None),
        ({"output_tokens": 272}, None),
        ({"input_tokens_details": {"text_tokens": 2, "image_tokens": 0}, "output_tokens": -1}, None),
        (
            {"input_tokens_details": {"text_tokens": 2, "image_tokens": 0}, "output_tokens": 100},
            Decimal("0.00301"),
        ),
        (
            {
                "input_tokens_details": {"text_tokens": 2, "image_tokens": 0},
                "output_tokens": 100,
                "output_tokens_details": {"text_tokens": 10, "image_tokens": 90},
            },
            Decimal("0.00281"),  # 2 x 0.000005 + 90 x 0.00003 + 10 x 0.00001
        ),
    ],
)
def test_usage_blocks_are_read_exactly_or_not_at_all(usage: object, expected: Decimal | None) -> None:
    found = reported_usage("openai", "gpt-image-2", {"usage": usage})
    assert (found.amount if found else None) == expected
