"""What to generate: :class:`VideoGenerationRequest`, :class:`ImageGenerationRequest`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .. import _validators as v
from .._redact import redacted_repr
from ..exceptions import ValidationError
from ._media import (
    AnyDict,
    AspectRatio,
    ImageType,
    MediaType,
    Resolution,
    _image_list_validator,
    _mask_input,
    _media_validator,
    _to_dict,
    _to_image_list,
    _video_input,
)

__all__ = ["ImageGenerationRequest", "VideoGenerationRequest"]


def _split_extras(cls: type[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    names = {a.name for a in attrs.fields(cls)}
    known = {k: val for k, val in kwargs.items() if k in names}
    extras = {k: val for k, val in kwargs.items() if k not in names}
    given = known.get("extra_params")
    if given is not None and not isinstance(given, Mapping):
        raise ValidationError(
            f"{cls.__name__}.extra_params: expected a mapping, got {type(given).__name__}",
            field="extra_params",
            value=given,
        )
    known["extra_params"] = {**(dict(given) if given else {}), **extras}
    return known


@attrs.define(init=False)
class VideoGenerationRequest:
    """What to generate. Unknown keyword arguments are collected into ``extra_params``.

    ``VideoGenerationRequest(prompt="a cat", cfg_scale=0.5)`` gives
    ``extra_params == {"cfg_scale": 0.5}``; the caller's dicts are never mutated.
    """

    prompt: str = attrs.field(validator=v.string(max_len=100_000))
    duration_seconds: int | None = attrs.field(
        default=None,
        converter=v.to_int_or_none,
        validator=v.number(optional=True, integer=True, minimum=1, maximum=3600),
    )
    resolution: Resolution | None = attrs.field(default=None, validator=v.resolution)
    aspect_ratio: AspectRatio | None = attrs.field(default=None, validator=v.aspect_ratio)
    generate_audio: bool | None = attrs.field(default=None, validator=v.boolean())
    image_list: list[ImageType] = attrs.field(
        factory=list,
        converter=_to_image_list,
        validator=_image_list_validator,
    )
    video: MediaType | None = attrs.field(
        default=None,
        converter=_video_input,
        validator=_media_validator(True),
    )
    seed: int | None = attrs.field(
        default=None,
        converter=v.to_int_or_none,
        validator=v.number(optional=True, integer=True, minimum=-(2**63), maximum=2**64),
    )
    number_of_videos: int = attrs.field(
        default=1,
        converter=v.to_int_or_none,
        validator=v.number(integer=True, minimum=1, maximum=16),
    )
    negative_prompt: str | None = attrs.field(default=None, validator=v.string(optional=True))
    enhance_prompt: bool | None = attrs.field(default=None, validator=v.boolean())
    extra_params: AnyDict = attrs.field(
        factory=dict,
        converter=_to_dict,
        repr=redacted_repr,
        validator=v.mapping,
    )

    def __init__(self, prompt: str, **kwargs: Any) -> None:
        self.__attrs_init__(prompt=prompt, **_split_extras(type(self), kwargs))


@attrs.define(init=False)
class ImageGenerationRequest:
    """What image to generate. Unknown keyword arguments are collected into ``extra_params``."""

    prompt: str = attrs.field(validator=v.string(max_len=100_000))
    negative_prompt: str | None = attrs.field(default=None, validator=v.string(optional=True))
    size: str | None = attrs.field(default=None, validator=v.string(optional=True, max_len=100))
    quality: str | None = attrs.field(default=None, validator=v.string(optional=True, max_len=100))
    style: str | None = attrs.field(default=None, validator=v.string(optional=True, max_len=200))
    n: int = attrs.field(
        default=1,
        converter=v.to_int_or_none,
        validator=v.number(integer=True, minimum=1, maximum=100),
    )
    image_list: list[ImageType] = attrs.field(
        factory=list,
        converter=_to_image_list,
        validator=_image_list_validator,
    )
    mask_image: MediaType | None = attrs.field(
        default=None,
        converter=_mask_input,
        validator=_media_validator(True),
    )
    seed: int | None = attrs.field(
        default=None,
        converter=v.to_int_or_none,
        validator=v.number(optional=True, integer=True, minimum=-(2**63), maximum=2**64),
    )
    aspect_ratio: AspectRatio | None = attrs.field(default=None, validator=v.aspect_ratio)
    extra_params: AnyDict = attrs.field(
        factory=dict,
        converter=_to_dict,
        repr=redacted_repr,
        validator=v.mapping,
    )

    def __init__(self, prompt: str, **kwargs: Any) -> None:
        self.__attrs_init__(prompt=prompt, **_split_extras(type(self), kwargs))
