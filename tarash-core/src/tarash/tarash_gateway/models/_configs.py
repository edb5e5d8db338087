"""Where and how to generate: :class:`VideoGenerationConfig`, :class:`ImageGenerationConfig`,
their fallback chains."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from .. import _validators as v
from .._cost import to_decimal
from .._redact import redacted_repr, register_secret
from ._media import AnyDict, _to_dict
from ._mock import MockConfig

__all__ = ["MAX_CHAIN_LENGTH", "ImageGenerationConfig", "VideoGenerationConfig", "iter_fallback_chain"]


def _max_cost(value: Any) -> Decimal | None:
    return None if value is None else to_decimal(value, "max_cost")


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
    A job abandoned for a fallback is cancelled first; unless that cancel is confirmed (it failed,
    the provider has none, or the job had already ended and may have completed) the fallback is not
    started (``CancelUnconfirmedError``), unless ``fallback_on_unconfirmed_cancel`` is set (then two
    jobs may be billed).

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
        repr=redacted_repr,
        validator=v.string(optional=True, max_len=2000),
    )
    api_version: str | None = attrs.field(default=None, validator=v.string(optional=True, max_len=100))
    timeout: float = _VIDEO_DEFAULTS["timeout"]
    max_poll_attempts: int = _VIDEO_DEFAULTS["max_poll_attempts"]
    poll_interval: float = _VIDEO_DEFAULTS["poll_interval"]
    mock: MockConfig | None = attrs.field(default=None, repr=redacted_repr, validator=_mock_validator)
    fallback_configs: tuple[VideoGenerationConfig, ...] | None = attrs.field(
        default=None,
        converter=_to_fallbacks,
        validator=_fallbacks_validator("VideoGenerationConfig"),
    )
    provider_config: AnyDict = attrs.field(
        factory=dict,
        converter=_to_dict,
        repr=redacted_repr,
        validator=v.mapping,
    )
    fallback_on_unconfirmed_cancel: bool = attrs.field(default=False, validator=v.boolean(optional=False))
    webhook_url: str | None = attrs.field(
        default=None, repr=redacted_repr, validator=v.string(optional=True, max_len=2000)
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
        repr=redacted_repr,
        validator=v.string(optional=True, max_len=2000),
    )
    api_version: str | None = attrs.field(default=None, validator=v.string(optional=True, max_len=100))
    timeout: float = _IMAGE_DEFAULTS["timeout"]
    max_poll_attempts: int = _IMAGE_DEFAULTS["max_poll_attempts"]
    poll_interval: float = _IMAGE_DEFAULTS["poll_interval"]
    mock: MockConfig | None = attrs.field(default=None, repr=redacted_repr, validator=_mock_validator)
    fallback_configs: tuple[ImageGenerationConfig, ...] | None = attrs.field(
        default=None,
        converter=_to_fallbacks,
        validator=_fallbacks_validator("ImageGenerationConfig"),
    )
    provider_config: AnyDict = attrs.field(
        factory=dict,
        converter=_to_dict,
        repr=redacted_repr,
        validator=v.mapping,
    )
    fallback_on_unconfirmed_cancel: bool = attrs.field(default=False, validator=v.boolean(optional=False))
    webhook_url: str | None = attrs.field(
        default=None, repr=redacted_repr, validator=v.string(optional=True, max_len=2000)
    )
    output_lifetime: float | None = attrs.field(
        default=None, validator=v.number(optional=True, positive=True, maximum=10 * 365 * 86400)
    )
    #: Refuse the call before submit when its expected cost exceeds this (same currency as the
    #: price, USD for every bundled one); costs already charged by earlier attempts of the chain
    #: count too. Raises CostLimitExceededError.
    max_cost: Decimal | None = attrs.field(default=None, converter=_max_cost)


R = TypeVar("R")


def iter_fallback_chain(config: R) -> Iterator[R]:
    """The config followed by its fallbacks, depth-first pre-order (as the original)."""
    yield config
    for child in getattr(config, "fallback_configs", None) or ():
        yield from iter_fallback_chain(child)
