"""Declarative translation of a unified request into a provider's payload.

A mapping is ``{api_field: FieldMapper}``. :func:`apply_field_mappers` reads each mapper's source
field from the request, converts it, and omits ``None`` results. Converters raise
:class:`~tarash.tarash_gateway.exceptions.ValidationError` naming the unified field, the value and
the allowed values, so an impossible request is refused before anything is sent (or billed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from .exceptions import ValidationError
from .models import MediaContent

__all__ = [
    "FieldMapper",
    "allowed_values_mapper",
    "apply_field_mappers",
    "duration_field_mapper",
    "extra_params_field_mapper",
    "image_list_field_mapper",
    "match_model_prefix",
    "media_to_url",
    "passthrough_field_mapper",
    "single_image_field_mapper",
    "video_url_field_mapper",
]

Converter = Callable[[Any, Any], Any]


def _identity(request: Any, value: Any) -> Any:
    return value


@attrs.frozen
class FieldMapper:
    """Maps one API field from one request attribute.

    Attributes:
        source_field: the request attribute to read (``"duration_seconds"``, ``"image_list"``…).
        converter: ``(request, value) -> api_value``; return ``None`` to omit the field.
        required: raise ValidationError when the converted value is ``None``.
    """

    source_field: str
    converter: Converter = _identity
    required: bool = False


def apply_field_mappers(
    mappers: Mapping[str, FieldMapper],
    request: Any,
    *,
    model: str | None = None,
) -> dict[str, Any]:
    """Build the provider payload for ``request`` (``None``, ``[]`` and ``{}`` are omitted)."""
    payload: dict[str, Any] = {}
    for api_field, mapper in mappers.items():
        value = getattr(request, mapper.source_field, None)
        converted = mapper.converter(request, value)
        if converted is None or converted == [] or converted == {}:
            if mapper.required:
                raise ValidationError(
                    f"{mapper.source_field} is required by {model or 'this model'}",
                    field=mapper.source_field,
                    value=value,
                    model=model,
                )
            continue
        payload[api_field] = converted
    return payload


def match_model_prefix(model: str, prefixes: Iterable[str]) -> str | None:
    """The longest prefix that matches ``model`` on whole path segments, or ``None``.

    ``"fal-ai/veo3.1"`` matches ``"fal-ai/veo3.1"`` and ``"fal-ai/veo3.1/fast"`` but not
    ``"fal-ai/veo3.10"``; a trailing ``/`` on a prefix is ignored.
    """
    best: str | None = None
    model_parts = model.strip("/").split("/")
    for prefix in prefixes:
        parts = prefix.strip("/").split("/")
        if model_parts[: len(parts)] == parts and (
            best is None or len(parts) > len(best.strip("/").split("/"))
        ):
            best = prefix
    return best


def media_to_url(value: Any) -> str:
    """A URL or data URI for any media value (``MediaContent`` becomes a data URI)."""
    if isinstance(value, MediaContent):
        return value.to_data_uri()
    return str(value)


def passthrough_field_mapper(source_field: str, required: bool = False) -> FieldMapper:
    return FieldMapper(source_field, _identity, required)


def extra_params_field_mapper(param_name: str, required: bool = False) -> FieldMapper:
    """Take ``request.extra_params[param_name]``."""
    return FieldMapper("extra_params", lambda _r, extras: (extras or {}).get(param_name), required)


def allowed_values_mapper(
    source_field: str,
    allowed: Sequence[Any],
    *,
    transform: Callable[[Any], Any] = lambda value: value,
    required: bool = False,
) -> FieldMapper:
    """Refuse values outside ``allowed`` (ValidationError naming field, value and allowed)."""

    def convert(request: Any, value: Any) -> Any:
        if value is None:
            return None
        if value not in allowed:
            raise ValidationError(
                f"{source_field}={value!r} is not allowed; allowed values: {', '.join(map(str, allowed))}",
                field=source_field,
                value=value,
                allowed=allowed,
            )
        return transform(value)

    return FieldMapper(source_field, convert, required)


def duration_field_mapper(
    allowed: Sequence[int] | None = None,
    *,
    as_string: bool = True,
    suffix: str = "",
    required: bool = False,
) -> FieldMapper:
    """Map ``duration_seconds``; e.g. ``as_string=True`` sends ``"5"``, ``suffix="s"`` sends ``"5s"``."""

    def fmt(value: int) -> Any:
        return f"{value}{suffix}" if as_string else value

    if allowed is None:
        return FieldMapper(
            "duration_seconds", lambda _r, value: None if value is None else fmt(value), required
        )
    return allowed_values_mapper("duration_seconds", tuple(allowed), transform=fmt, required=required)


def _images(request: Any, roles: Sequence[str] | None) -> list[Any]:
    return [img for img in (getattr(request, "image_list", None) or ()) if roles is None or img.type in roles]


def single_image_field_mapper(
    roles: Sequence[str] = ("reference", "first_frame"),
    *,
    required: bool = False,
) -> FieldMapper:
    """The one image with a role in ``roles`` (more than one is a ValidationError)."""

    def convert(request: Any, _value: Any) -> Any:
        found = _images(request, roles)
        if len(found) > 1:
            raise ValidationError(
                f"image_list: at most one image with role {' or '.join(roles)} is accepted, got {len(found)}",
                field="image_list",
                value=[i.type for i in found],
                allowed=tuple(roles),
            )
        return media_to_url(found[0].image) if found else None

    return FieldMapper("image_list", convert, required)


def image_list_field_mapper(roles: Sequence[str] | None = ("reference",)) -> FieldMapper:
    """All images with a role in ``roles`` (``None``: any role), as a list of URLs."""

    def convert(request: Any, _value: Any) -> Any:
        return [media_to_url(img.image) for img in _images(request, roles)] or None

    return FieldMapper("image_list", convert)


def video_url_field_mapper(required: bool = False) -> FieldMapper:
    """``request.video`` as a URL (bytes become a data URI)."""
    return FieldMapper("video", lambda _r, value: None if value is None else media_to_url(value), required)
