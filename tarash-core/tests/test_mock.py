"""The built-in mock provider: error injection, what it accepts, and its simulated jobs."""

from __future__ import annotations

import traceback

import pytest

from tarash.tarash_gateway import generate_video
from tarash.tarash_gateway.exceptions import GenerationFailedError
from tarash.tarash_gateway.models import (
    MockConfig,
    MockPollingConfig,
    MockResponse,
    VideoGenerationConfig,
    VideoGenerationRequest,
)

QUICK = MockPollingConfig(delay_between_updates=0)


@pytest.mark.parametrize("polling", [QUICK, None], ids=["polled", "raised-at-submit"])
def test_a_reused_error_is_raised_fresh_for_each_call(polling: MockPollingConfig | None) -> None:
    configured = GenerationFailedError("GPU pool exhausted")
    outage = MockConfig(responses=[MockResponse(error=configured)], polling=polling)
    raised = []
    for model in ("first-model", "second-model"):
        with pytest.raises(GenerationFailedError) as info:
            generate_video(
                VideoGenerationConfig(provider="fal", model=model, mock=outage), VideoGenerationRequest("x")
            )
        raised.append(info.value)
    first, second = raised
    assert (first.model, second.model) == ("first-model", "second-model")
    assert first is not second and configured not in raised
    assert (configured.model, configured.request_id, configured.__traceback__) == (None, None, None)
    assert len(traceback.extract_tb(second.__traceback__)) == len(traceback.extract_tb(first.__traceback__))
    if polling is not None:
        assert first.request_id != second.request_id


class _NeedsACode(Exception):
    def __init__(self, *, code: int) -> None:
        super().__init__(f"code {code}")


def test_an_error_that_cannot_be_copied_is_raised_as_configured() -> None:
    configured = _NeedsACode(code=7)
    mock = MockConfig(responses=[MockResponse(error=configured)], polling=None)
    with pytest.raises(GenerationFailedError) as info:
        generate_video(
            VideoGenerationConfig(provider="mock", model="mock", mock=mock), VideoGenerationRequest("x")
        )
    assert info.value.__cause__ is configured
