"""The mock provider's settings: :class:`MockConfig`, :class:`MockResponse`,
:class:`MockPollingConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

import attrs

from .. import _validators as v
from .._cost import to_decimal
from ..exceptions import ValidationError
from ._media import (
    AnyDict,
    MediaType,
    _build,
    _instance_of,
    _is_percent,
    _is_position,
    _is_status,
    _is_str_mapping,
    _is_url,
    _media_validator,
    _sequence_of,
    _to_optional_media,
    _to_tuple,
)
from ._responses import ImageGenerationResponse, VideoGenerationResponse

__all__ = ["MockConfig", "MockPollingConfig", "MockResponse"]


@attrs.frozen(kw_only=True)
class MockPollingConfig:
    """How the mock simulates a provider's queue: one update per status, ``delay`` apart."""

    enabled: bool = attrs.field(default=True, validator=v.boolean(optional=False))
    status_sequence: tuple[str, ...] = attrs.field(
        default=("queued", "processing", "completed"),
        converter=_to_tuple,
        validator=_sequence_of(
            "statuses (queued, processing, completed, failed)", _is_status, optional=False, nonempty=True
        ),
    )
    delay_between_updates: float = attrs.field(
        default=0.5,
        validator=v.number(minimum=0, maximum=3600),
    )
    progress_percentages: tuple[float | None, ...] | None = attrs.field(
        default=None,
        converter=_to_tuple,
        validator=_sequence_of("percentages between 0 and 100 (or None)", _is_percent),
    )
    custom_updates: tuple[AnyDict, ...] | None = attrs.field(
        default=None,
        converter=_to_tuple,
        validator=_sequence_of("mappings with string keys", _is_str_mapping),
    )
    queue_positions: tuple[int | None, ...] | None = attrs.field(
        default=None,
        converter=_to_tuple,
        validator=_sequence_of("queue positions (integers >= 0, or None)", _is_position),
    )

    def __attrs_post_init__(self) -> None:
        for name in ("progress_percentages", "custom_updates"):
            seq = getattr(self, name)
            if seq is not None and len(seq) != len(self.status_sequence):
                raise ValidationError(
                    f"MockPollingConfig.{name} must have one entry per status "
                    f"({len(self.status_sequence)}), got {len(seq)}",
                    field=name,
                    value=seq,
                )


def _to_mock_responses(value: Any) -> Any:
    if value is None:
        return (MockResponse(),)
    if isinstance(value, (list, tuple)):
        return tuple(
            _build(MockResponse, f"responses[{index}]", r) if isinstance(r, Mapping) else r
            for index, r in enumerate(value)
        )
    return value


def _to_polling(value: Any) -> Any:
    return _build(MockPollingConfig, "polling", value) if isinstance(value, Mapping) else value


def _response_validator(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    responses = (VideoGenerationResponse, ImageGenerationResponse)
    if value is not None and not isinstance(value, responses):
        raise v.fail(inst, attr, value, "a VideoGenerationResponse or ImageGenerationResponse")


@attrs.frozen(kw_only=True)
class MockResponse:
    """One possible mock outcome, picked with probability proportional to ``weight``.

    Exactly one of: ``error`` (raised), ``mock_response`` (returned as is), ``output_video`` /
    ``output_images`` (returned as the media); with none of them the mock picks a bundled clip or
    image matching the request.
    """

    weight: float = attrs.field(default=1.0, validator=v.number(positive=True, maximum=1e12))
    mock_response: VideoGenerationResponse | ImageGenerationResponse | None = attrs.field(
        default=None,
        validator=_response_validator,
    )
    output_video: MediaType | None = attrs.field(
        default=None,
        converter=_to_optional_media,
        validator=_media_validator(True),
    )
    output_video_type: Literal["url", "content"] = attrs.field(
        default="url",
        validator=v.one_of(("url", "content"), optional=False),
    )
    output_images: tuple[str, ...] | None = attrs.field(
        default=None,
        converter=_to_tuple,
        validator=_sequence_of("image URLs", _is_url),
    )
    error: BaseException | None = attrs.field(
        default=None,
        validator=_instance_of("an exception instance", BaseException),
    )

    def __attrs_post_init__(self) -> None:
        if self.error is not None and (self.mock_response or self.output_video or self.output_images):
            raise ValidationError(
                "MockResponse: error excludes success fields", field="error", value=self.error
            )


def _responses_validator(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not value:
        raise v.fail(inst, attr, value, "a non-empty list of MockResponse (or mappings)")
    for index, item in enumerate(value):
        if not isinstance(item, MockResponse):
            raise ValidationError(
                f"MockConfig.responses[{index}]: expected a MockResponse or a mapping, "
                f"got {v.describe(item)}",
                field=f"responses[{index}]",
                value=item,
            )


def _mock_price(value: Any) -> Decimal | None:
    return None if value is None else to_decimal(value, "mock.price")


@attrs.frozen(kw_only=True)
class MockConfig:
    """Switch a config to the offline mock provider (``mock=MockConfig(enabled=True)``)."""

    enabled: bool = attrs.field(default=True, validator=v.boolean(optional=False))
    responses: tuple[MockResponse, ...] = attrs.field(
        default=None,
        converter=_to_mock_responses,
        validator=_responses_validator,
    )
    polling: MockPollingConfig | None = attrs.field(
        default=None,
        converter=_to_polling,
        validator=_instance_of("a MockPollingConfig (or a mapping)", MockPollingConfig),
    )
    seed: int | None = attrs.field(default=None, validator=v.number(optional=True, integer=True))
    #: The mock's price per unit (per second of video, per image), reported through its price
    #: API; ``None``: the bundled table's (free).
    price: Decimal | None = attrs.field(default=None, converter=_mock_price)
