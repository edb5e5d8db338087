"""Request, config, response and progress models (attrs classes).

Configs and responses are frozen; requests are mutable. Every field is checked when the object is
built, and a bad value raises :class:`~tarash.tarash_gateway.exceptions.ValidationError` naming the
field. ``api_key`` never appears in ``repr`` and is never serialised; reprs, progress updates,
attempt metadata and ``raw_response`` payloads are redacted (see :mod:`._redact`).
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, Union, runtime_checkable

import attrs

from . import _validators as v
from ._cost import Cost, to_decimal, total
from ._local_media import read_local
from ._redact import redact, redact_text, register_secret
from .exceptions import ValidationError

if TYPE_CHECKING:
    from ._outputs import SavedOutput

__all__ = [
    "AnyDict",
    "AspectRatio",
    "AsyncImageProgressCallback",
    "AsyncProgressCallback",
    "AttemptMetadata",
    "ExecutionMetadata",
    "ImageGenerationConfig",
    "ImageGenerationRequest",
    "ImageGenerationResponse",
    "ImageGenerationUpdate",
    "ImageProgressCallback",
    "ImageRole",
    "ImageType",
    "MediaContent",
    "MediaType",
    "MockConfig",
    "MockPollingConfig",
    "MockResponse",
    "ProgressCallback",
    "ProviderHandler",
    "Resolution",
    "StatusType",
    "SyncImageProgressCallback",
    "SyncProgressCallback",
    "VideoGenerationConfig",
    "VideoGenerationRequest",
    "VideoGenerationResponse",
    "VideoGenerationUpdate",
]

AnyDict = dict[str, Any]
#: An aspect ratio such as ``"16:9"``, ``"9:16"``, ``"1:1"``, ``"4:3"``, ``"21:9"`` or ``"auto"``.
AspectRatio = str
#: A resolution such as ``"480p"``, ``"720p"``, ``"1080p"`` or ``"4k"``.
Resolution = str
StatusType = Literal["queued", "processing", "completed", "failed"]
ImageRole = Literal["reference", "first_frame", "last_frame", "asset", "style"]


@attrs.frozen(repr=False)
class MediaContent:
    """Raw media bytes with their MIME type (also accepted as ``{"content": b, "content_type": t}``)."""

    content: bytes = attrs.field(validator=v.binary)
    content_type: str = attrs.field(validator=v.string(nonempty=True, max_len=200))

    def __repr__(self) -> str:
        return f"MediaContent(<{len(self.content)} bytes>, content_type={self.content_type!r})"

    def __getitem__(self, key: str) -> Any:
        """Dict-style access, as with the original TypedDict (``media["content"]``)."""
        if key in ("content", "content_type"):
            return getattr(self, key)
        raise KeyError(key)

    def to_data_uri(self) -> str:
        """``data:<type>;base64,<content>``."""
        return f"data:{self.content_type};base64,{base64.b64encode(self.content).decode()}"


#: A URL (https, data URI, file) or raw bytes with their MIME type.
MediaType = Union[str, MediaContent]


def _to_media(value: Any) -> Any:
    """``{"content": b, "content_type": t}`` becomes MediaContent; an invalid one is left as is
    for the field's validator, which names the field."""
    if isinstance(value, Mapping) and set(value) == {"content", "content_type"}:
        try:
            return MediaContent(content=value["content"], content_type=value["content_type"])
        except ValidationError:
            return value
    return value


def _to_optional_media(value: Any) -> Any:
    return None if value is None else _to_media(value)


def _input_media(value: Any, field: str) -> Any:
    """An input media field's value: a local input (path, bytes, binary file) is read into
    MediaContent now (see :mod:`._local_media`); anything else as :func:`_to_media`."""
    if value is None:
        return None
    local = read_local(value, field)
    return _to_media(value) if local is None else MediaContent(content=local[0], content_type=local[1])


def _image_input(value: Any) -> Any:
    return _input_media(value, "image")


def _video_input(value: Any) -> Any:
    return _input_media(value, "video")


def _mask_input(value: Any) -> Any:
    return _input_media(value, "mask_image")


def _media_validator(optional: bool) -> v.Validator:
    def check(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if isinstance(value, MediaContent):
            return
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise v.fail(
                inst, attr, value, "a URL, a data URI or MediaContent (bytes content, non-empty content_type)"
            )

    return check


@attrs.frozen(repr=False)
class ImageType:
    """An input image and its role (also accepted as ``{"image": ..., "type": ...}``).

    ``image`` may also be a local input (a ``pathlib.Path``, ``bytes`` or an open binary file),
    read into :class:`MediaContent` when the object is built (see :mod:`._local_media`)."""

    image: MediaType = attrs.field(converter=_image_input, validator=_media_validator(False))
    type: ImageRole = attrs.field(validator=v.one_of(v.IMAGE_ROLES, optional=False))

    def __getitem__(self, key: str) -> Any:
        if key in ("image", "type"):
            return getattr(self, key)
        raise KeyError(key)

    def __repr__(self) -> str:
        image = self.image if isinstance(self.image, MediaContent) else _short(self.image)
        return f"ImageType(image={image!r}, type={self.type!r})"


def _short(text: str) -> str:
    return text if len(text) <= 80 else f"{text[:60]}...<{len(text)} chars>"


def _to_image_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = []
        for index, item in enumerate(value):
            if isinstance(item, ImageType):
                items.append(item)
            elif isinstance(item, Mapping) and set(item) <= {"image", "type"}:
                try:
                    role: Any = item.get("type")
                    items.append(ImageType(image=item.get("image"), type=role))
                except ValidationError as exc:
                    raise ValidationError(
                        f"image_list[{index}]: {exc.message}",
                        field=f"image_list[{index}].{exc.field}",
                        value=exc.value,
                        allowed=exc.allowed,
                    ) from None
            else:
                raise ValidationError(
                    f"image_list[{index}]: expected {{'image': ..., 'type': role}}, "
                    f"got {type(item).__name__}",
                    field=f"image_list[{index}]",
                    value=item,
                )
        return items
    return value


def _image_list_validator(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, list):
        raise v.fail(inst, attr, value, "a list of images")


def _to_list(value: Any) -> list[Any]:
    return list(value)


def _to_dict(value: Any) -> Any:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return value


# --------------------------------------------------------------------------------------------
# Mock configuration (the provider itself lives in tarash.tarash_gateway.mock)
# --------------------------------------------------------------------------------------------


def _to_tuple(value: Any) -> Any:
    """Lists and tuples become tuples; anything else is left for the validator to reject."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _sequence_of(
    expected: str, item_ok: Callable[[Any], bool], *, optional: bool = True, nonempty: bool = False
) -> v.Validator:
    """A tuple whose items pass ``item_ok``; a bad item is named as ``field[index]``."""

    def check(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, tuple) or (nonempty and not value):
            kind = "a non-empty list" if nonempty else "a list"
            raise v.fail(inst, attr, value, f"{kind} of {expected}")
        for index, item in enumerate(value):
            if not item_ok(item):
                raise ValidationError(
                    f"{type(inst).__name__}.{attr.name}[{index}]: expected {expected}, "
                    f"got {v.describe(item)}",
                    field=f"{attr.name}[{index}]",
                    value=item,
                )

    return check


def _is_status(item: Any) -> bool:
    return isinstance(item, str) and item in v.STATUSES


def _is_percent(item: Any) -> bool:
    return item is None or (
        isinstance(item, (int, float))
        and not isinstance(item, bool)
        and math.isfinite(item)
        and 0 <= item <= 100
    )


def _is_str_mapping(item: Any) -> bool:
    return isinstance(item, Mapping) and all(isinstance(k, str) for k in item)


def _is_position(item: Any) -> bool:
    return item is None or (isinstance(item, int) and not isinstance(item, bool) and item >= 0)


def _is_url(item: Any) -> bool:
    return isinstance(item, str) and bool(item.strip()) and "\x00" not in item


def _build(cls: type[Any], prefix: str, value: Mapping[Any, Any]) -> Any:
    """``cls(**value)`` whose errors name the nested field (``"polling.delay_between_updates"``)."""
    names = sorted(a.name for a in attrs.fields(cls))
    unknown = [k for k in value if k not in names]
    if unknown:
        raise ValidationError(
            f"{prefix}: unknown {cls.__name__} field(s) {', '.join(v.describe(k, 40) for k in unknown)}",
            field=prefix,
            value=dict(value),
            allowed=names,
        )
    try:
        return cls(**value)
    except ValidationError as exc:
        raise ValidationError(
            f"{prefix}: {exc.message}",
            field=f"{prefix}.{exc.field}" if exc.field else prefix,
            value=exc.value,
            allowed=exc.allowed,
        ) from None


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


def _instance_of(expected: str, *types: type[Any]) -> v.Validator:
    def check(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not isinstance(value, types):
            raise v.fail(inst, attr, value, expected)

    return check


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


def _max_cost(value: Any) -> Decimal | None:
    return None if value is None else to_decimal(value, "max_cost")


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


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------


def _register_key(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise v.fail(inst, attr, "<api_key>", "a string")
    register_secret(value)


def _to_fallbacks(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return value


#: The most configs one fallback chain may hold (the config itself and all nested fallbacks).
MAX_CHAIN_LENGTH = 64


def _fallbacks_validator(kind: str) -> v.Validator:
    def check(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, tuple) or not all(type(c) is type(inst) for c in value):
            raise v.fail(inst, attr, value, f"a list of {kind}")
        length = 1 + sum(len(list(iter_fallback_chain(c))) for c in value)
        if length > MAX_CHAIN_LENGTH:
            raise v.fail(
                inst, attr, f"<{length} configs>", f"at most {MAX_CHAIN_LENGTH} configs in the fallback chain"
            )

    return check


def _safe_repr(value: Any) -> str:
    """``repr`` with secrets scrubbed: credential-named keys, known keys, URL tokens."""
    return redact_text(repr(redact(value) if isinstance(value, Mapping) else value))


def _mock_validator(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, MockConfig):
        raise v.fail(inst, attr, value, "a MockConfig")


def _config_fields(timeout: float, max_poll_attempts: int, poll_interval: float) -> dict[str, Any]:
    return {
        "timeout": attrs.field(default=timeout, validator=v.number(positive=True, maximum=7 * 86400)),
        "max_poll_attempts": attrs.field(
            default=max_poll_attempts,
            validator=v.number(integer=True, minimum=1, maximum=10**7),
        ),
        "poll_interval": attrs.field(default=poll_interval, validator=v.number(minimum=0, maximum=3600)),
    }


_VIDEO_DEFAULTS = _config_fields(600, 120, 5)
_IMAGE_DEFAULTS = _config_fields(120, 60, 2)


@attrs.frozen(kw_only=True)
class VideoGenerationConfig:
    """Where and how to generate a video.

    ``timeout`` is one wall-clock deadline (seconds) for the whole generation: submit, waiting and
    fetching the result. On expiry core cancels the remote job and raises ``TimeoutError``.
    ``fallback_configs`` are tried depth-first when an attempt fails with a retryable error.
    A job abandoned for a fallback is cancelled first; while that cancel is unconfirmed the fallback
    is not started (``CancelUnconfirmedError``), unless ``fallback_on_unconfirmed_cancel`` is set
    (then two jobs may be billed).

    ``webhook_url``: the provider delivers the job's completion there (providers whose
    ``Capabilities.webhooks`` is set); a :class:`~tarash.tarash_gateway.webhooks.WebhookReceiver`
    in this process ends the job's wait on it without another status poll.
    ``output_lifetime``: seconds the provider should keep the outputs (where it lets you choose,
    e.g. fal); the response's ``expires_at`` says when they go.
    """

    model: str = attrs.field(validator=v.string(nonempty=True, max_len=500))
    provider: str = attrs.field(validator=v.string(nonempty=True, max_len=100))
    api_key: str | None = attrs.field(default=None, repr=False, validator=_register_key)
    base_url: str | None = attrs.field(
        default=None,
        repr=_safe_repr,
        validator=v.string(optional=True, max_len=2000),
    )
    api_version: str | None = attrs.field(default=None, validator=v.string(optional=True, max_len=100))
    timeout: float = _VIDEO_DEFAULTS["timeout"]
    max_poll_attempts: int = _VIDEO_DEFAULTS["max_poll_attempts"]
    poll_interval: float = _VIDEO_DEFAULTS["poll_interval"]
    mock: MockConfig | None = attrs.field(default=None, repr=_safe_repr, validator=_mock_validator)
    fallback_configs: tuple[VideoGenerationConfig, ...] | None = attrs.field(
        default=None,
        converter=_to_fallbacks,
        validator=_fallbacks_validator("VideoGenerationConfig"),
    )
    provider_config: AnyDict = attrs.field(
        factory=dict,
        converter=_to_dict,
        repr=_safe_repr,
        validator=v.mapping,
    )
    fallback_on_unconfirmed_cancel: bool = attrs.field(default=False, validator=v.boolean(optional=False))
    webhook_url: str | None = attrs.field(
        default=None, repr=_safe_repr, validator=v.string(optional=True, max_len=2000)
    )
    output_lifetime: float | None = attrs.field(
        default=None, validator=v.number(optional=True, positive=True, maximum=10 * 365 * 86400)
    )
    #: Refuse the call before submit when its expected cost exceeds this (same currency as the
    #: price, USD for every bundled one); costs already charged by earlier attempts of the chain
    #: count too. Raises CostLimitExceededError.
    max_cost: Decimal | None = attrs.field(default=None, converter=_max_cost)


@attrs.frozen(kw_only=True)
class ImageGenerationConfig:
    """Where and how to generate images (see :class:`VideoGenerationConfig`)."""

    model: str = attrs.field(validator=v.string(nonempty=True, max_len=500))
    provider: str = attrs.field(validator=v.string(nonempty=True, max_len=100))
    api_key: str | None = attrs.field(default=None, repr=False, validator=_register_key)
    base_url: str | None = attrs.field(
        default=None,
        repr=_safe_repr,
        validator=v.string(optional=True, max_len=2000),
    )
    api_version: str | None = attrs.field(default=None, validator=v.string(optional=True, max_len=100))
    timeout: float = _IMAGE_DEFAULTS["timeout"]
    max_poll_attempts: int = _IMAGE_DEFAULTS["max_poll_attempts"]
    poll_interval: float = _IMAGE_DEFAULTS["poll_interval"]
    mock: MockConfig | None = attrs.field(default=None, repr=_safe_repr, validator=_mock_validator)
    fallback_configs: tuple[ImageGenerationConfig, ...] | None = attrs.field(
        default=None,
        converter=_to_fallbacks,
        validator=_fallbacks_validator("ImageGenerationConfig"),
    )
    provider_config: AnyDict = attrs.field(
        factory=dict,
        converter=_to_dict,
        repr=_safe_repr,
        validator=v.mapping,
    )
    fallback_on_unconfirmed_cancel: bool = attrs.field(default=False, validator=v.boolean(optional=False))
    webhook_url: str | None = attrs.field(
        default=None, repr=_safe_repr, validator=v.string(optional=True, max_len=2000)
    )
    output_lifetime: float | None = attrs.field(
        default=None, validator=v.number(optional=True, positive=True, maximum=10 * 365 * 86400)
    )
    #: Refuse the call before submit when its expected cost exceeds this (same currency as the
    #: price, USD for every bundled one); costs already charged by earlier attempts of the chain
    #: count too. Raises CostLimitExceededError.
    max_cost: Decimal | None = attrs.field(default=None, converter=_max_cost)


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------

R = TypeVar("R")


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
        repr=_safe_repr,
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
        repr=_safe_repr,
        validator=v.mapping,
    )

    def __init__(self, prompt: str, **kwargs: Any) -> None:
        self.__attrs_init__(prompt=prompt, **_split_extras(type(self), kwargs))


# --------------------------------------------------------------------------------------------
# Execution metadata
# --------------------------------------------------------------------------------------------


def _scrubbed(value: Any) -> Any:
    """Known secrets and credential-looking tokens removed from text; other values unchanged."""
    return redact_text(value) if isinstance(value, str) else value


def _scrubbed_lines(value: Any) -> tuple[Any, ...]:
    return tuple(_scrubbed(line) for line in value)


def _redacted_dict(value: Any) -> Any:
    """A provider payload as a redacted dict (credential keys, known secrets, URL tokens)."""
    return redact(dict(value)) if isinstance(value, Mapping) else _to_dict(value)


@attrs.frozen(kw_only=True)
class AttemptMetadata:
    """One attempt in a fallback chain (timestamps are timezone-aware UTC)."""

    provider: str
    model: str
    attempt_number: int
    started_at: datetime
    ended_at: datetime | None = None
    status: Literal["success", "failed", "skipped"] = "failed"
    error_type: str | None = None
    error_message: str | None = attrs.field(default=None, converter=_scrubbed)
    is_retryable: bool | None = None
    request_id: str | None = None
    phase: str | None = None
    cancel_status: Literal["cancelled", "finished", "failed", "unsupported"] | None = None
    cancel_error: str | None = attrs.field(default=None, converter=_scrubbed)
    #: What the attempt cost (zero when refused before submit; an estimate until billed), or
    #: None when no price is known.
    cost: Cost | None = None

    @property
    def elapsed_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@attrs.frozen(kw_only=True)
class ExecutionMetadata:
    """Every attempt of one generation, in order."""

    total_attempts: int
    successful_attempt: int | None
    attempts: tuple[AttemptMetadata, ...]
    fallback_triggered: bool
    configs_in_chain: int

    @property
    def total_elapsed_seconds(self) -> float | None:
        ends = [a.ended_at for a in self.attempts if a.ended_at is not None]
        if not self.attempts or not ends:
            return None
        return (max(ends) - self.attempts[0].started_at).total_seconds()

    @property
    def total_cost(self) -> Cost | None:
        """The attempts' costs summed (failed-but-billed ones included), or None if none is known."""
        return total([attempt.cost for attempt in self.attempts])


# --------------------------------------------------------------------------------------------
# Responses and updates
# --------------------------------------------------------------------------------------------


def _status_validator(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value not in v.STATUSES:
        raise v.fail(inst, attr, value, "a status", v.STATUSES)


@attrs.frozen(kw_only=True)
class VideoGenerationResponse:
    """A finished video. ``video`` is a URL (https or file) or :class:`MediaContent`.

    ``raw_response`` is the provider's answer with credentials redacted.
    """

    request_id: str = attrs.field(validator=v.string(max_len=2000))
    video: MediaType = attrs.field(converter=_to_media, validator=_media_validator(False))
    content_type: str | None = None
    audio_url: str | None = None
    duration: float | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    status: Literal["completed", "failed"] = attrs.field(
        default="completed",
        validator=v.one_of(("completed", "failed"), optional=False),
    )
    is_mock: bool = False
    raw_response: AnyDict = attrs.field(factory=dict, converter=_redacted_dict, repr=False)
    execution_metadata: ExecutionMetadata | None = None
    provider: str | None = None
    model: str | None = None
    expires_at: datetime | None = None

    def download(self, dest: str | os.PathLike[str], **options: Any) -> list[SavedOutput]:
        """Save the outputs to ``dest`` (a directory, or a file path for one output) before they
        expire; each file's SHA-256 is recorded in the job's ledger history.

        ``options``: ``max_bytes``, ``timeout``, ``verify`` (an ``ssl.SSLContext``). Raises
        OutputExpiredError past ``expires_at`` or when the provider already deleted an output.
        """
        # lazy, and the one upward import of this module: the download path is engine-level
        from ._outputs import download_outputs

        return download_outputs(self, dest, **options)

    async def download_async(self, dest: str | os.PathLike[str], **options: Any) -> list[SavedOutput]:
        """Async :meth:`download`."""
        # lazy, and the one upward import of this module: the download path is engine-level
        from ._outputs import download_outputs_async

        return await download_outputs_async(self, dest, **options)


@attrs.frozen(kw_only=True)
class ImageGenerationResponse:
    """Finished images: URLs (https, file) or data URIs."""

    request_id: str = attrs.field(validator=v.string(max_len=2000))
    images: list[str] = attrs.field(converter=_to_list)
    content_type: str = "image/png"
    status: Literal["completed", "failed"] = attrs.field(
        default="completed",
        validator=v.one_of(("completed", "failed"), optional=False),
    )
    is_mock: bool = False
    revised_prompt: str | None = None
    raw_response: AnyDict = attrs.field(factory=dict, converter=_redacted_dict, repr=False)
    execution_metadata: ExecutionMetadata | None = None
    provider: str | None = None
    model: str | None = None
    expires_at: datetime | None = None

    def download(self, dest: str | os.PathLike[str], **options: Any) -> list[SavedOutput]:
        """Save the outputs to ``dest`` (a directory, or a file path for one output) before they
        expire; each file's SHA-256 is recorded in the job's ledger history.

        ``options``: ``max_bytes``, ``timeout``, ``verify`` (an ``ssl.SSLContext``). Raises
        OutputExpiredError past ``expires_at`` or when the provider already deleted an output.
        """
        # lazy, and the one upward import of this module: the download path is engine-level
        from ._outputs import download_outputs

        return download_outputs(self, dest, **options)

    async def download_async(self, dest: str | os.PathLike[str], **options: Any) -> list[SavedOutput]:
        """Async :meth:`download`."""
        # lazy, and the one upward import of this module: the download path is engine-level
        from ._outputs import download_outputs_async

        return await download_outputs_async(self, dest, **options)

    def __attrs_post_init__(self) -> None:
        if not self.images or not all(isinstance(i, str) and i for i in self.images):
            raise ValidationError(
                "ImageGenerationResponse.images must be a non-empty list of URLs",
                field="images",
                value=self.images,
                phase="result",
            )


def _percent(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise v.fail(inst, attr, value, "a percentage between 0 and 100")


def _update_str(update: VideoGenerationUpdate | ImageGenerationUpdate) -> str:
    """``processing 40%``, ``queued (queue position 2)``, ``failed: <error>``: one short line."""
    text: str = update.status
    if update.progress_percent is not None:
        text += f" {update.progress_percent:g}%"
    if update.queue_position is not None:
        text += f" (queue position {update.queue_position})"
    if update.error:
        text += f": {update.error}"
    return text


@attrs.frozen(kw_only=True)
class VideoGenerationUpdate:
    """A progress update passed to ``on_progress``.

    ``status`` is queued/processing/completed/failed; ``queue_position`` (0 = next) and
    ``progress_percent`` are set when the provider reports them; ``attempt`` is the 1-based attempt
    number in the fallback chain; ``update`` is the provider's raw status payload (redacted), and
    ``logs`` and ``error`` are scrubbed of secrets too. ``str(update)`` is one short line
    (``processing 40%``, ``queued (queue position 2)``), so ``on_progress=print`` stays readable.
    """

    request_id: str
    status: StatusType = attrs.field(validator=_status_validator)
    progress_percent: float | None = attrs.field(default=None, validator=_percent)
    update: AnyDict = attrs.field(factory=dict, converter=_redacted_dict)
    result: VideoGenerationResponse | None = None
    error: str | None = attrs.field(default=None, converter=_scrubbed)
    queue_position: int | None = None
    logs: tuple[str, ...] = attrs.field(default=(), converter=_scrubbed_lines)
    attempt: int = 1
    provider: str | None = None
    model: str | None = None
    elapsed_seconds: float | None = None

    __str__ = _update_str


@attrs.frozen(kw_only=True)
class ImageGenerationUpdate:
    """A progress update for image generation (same fields as :class:`VideoGenerationUpdate`)."""

    request_id: str
    status: StatusType = attrs.field(validator=_status_validator)
    progress_percent: float | None = attrs.field(default=None, validator=_percent)
    update: AnyDict = attrs.field(factory=dict, converter=_redacted_dict)
    result: ImageGenerationResponse | None = None
    error: str | None = attrs.field(default=None, converter=_scrubbed)
    queue_position: int | None = None
    logs: tuple[str, ...] = attrs.field(default=(), converter=_scrubbed_lines)
    attempt: int = 1
    provider: str | None = None
    model: str | None = None
    elapsed_seconds: float | None = None

    __str__ = _update_str


SyncProgressCallback = Callable[[VideoGenerationUpdate], None]
AsyncProgressCallback = Callable[[VideoGenerationUpdate], Awaitable[None]]
ProgressCallback = Union[SyncProgressCallback, AsyncProgressCallback]
SyncImageProgressCallback = Callable[[ImageGenerationUpdate], None]
AsyncImageProgressCallback = Callable[[ImageGenerationUpdate], Awaitable[None]]
ImageProgressCallback = Union[SyncImageProgressCallback, AsyncImageProgressCallback]


@runtime_checkable
class ProviderHandler(Protocol):
    """The runtime-registration contract (``register_provider(name, handler)``).

    Four methods; raise ``NotImplementedError`` for a modality the provider does not support.
    Installed plugins use the hooks in :mod:`tarash.tarash_gateway.hookspecs` instead.
    """

    def generate_video(
        self,
        config: VideoGenerationConfig,
        request: VideoGenerationRequest,
        on_progress: ProgressCallback | None = None,
    ) -> VideoGenerationResponse: ...

    async def generate_video_async(
        self,
        config: VideoGenerationConfig,
        request: VideoGenerationRequest,
        on_progress: ProgressCallback | None = None,
    ) -> VideoGenerationResponse: ...

    def generate_image(
        self,
        config: ImageGenerationConfig,
        request: ImageGenerationRequest,
        on_progress: ImageProgressCallback | None = None,
    ) -> ImageGenerationResponse: ...

    async def generate_image_async(
        self,
        config: ImageGenerationConfig,
        request: ImageGenerationRequest,
        on_progress: ImageProgressCallback | None = None,
    ) -> ImageGenerationResponse: ...


def iter_fallback_chain(config: R) -> Iterator[R]:
    """The config followed by its fallbacks, depth-first pre-order (as the original)."""
    yield config
    for child in getattr(config, "fallback_configs", None) or ():
        yield from iter_fallback_chain(child)


AnyConfig = Union[VideoGenerationConfig, ImageGenerationConfig]
AnyRequest = Union[VideoGenerationRequest, ImageGenerationRequest]
AnyResponse = Union[VideoGenerationResponse, ImageGenerationResponse]
AnyUpdate = Union[VideoGenerationUpdate, ImageGenerationUpdate]
